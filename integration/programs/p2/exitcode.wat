;; exitcode: a component whose wasi:cli/run calls wasi:cli/exit.exit-with-code(42), written by hand because no
;; toolchain on these machines emits that import (wasi-libc's exit(n) goes through the preview 1 adapter's
;; proc_exit, which jco's adapter turns into exit(err)). Assembled by `jco parse` (WasmComponents).
(component
  (import "wasi:cli/exit@0.2.12" (instance $exit
    (export "exit-with-code" (func (param "status-code" u8)))))
  (core module $m
    (import "exit" "exit-with-code" (func $exit_with_code (param i32)))
    (func (export "run") (result i32)
      i32.const 42
      call $exit_with_code
      ;; not reached: exit-with-code does not return
      i32.const 1))
  (core func $lowered (canon lower (func $exit "exit-with-code")))
  (core instance $i (instantiate $m (with "exit" (instance (export "exit-with-code" (func $lowered))))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.12" (instance $run_instance))
)
