;; A wasi:cli/run command importing wasi:http as an HTTP client does (types' outgoing-request, outgoing-handler's
;; handle; simplified signatures: nothing calls them) and returning ok. The runtime refuses it at Create, naming the
;; first wasi:http import. (An import of an instance type with no exports would be satisfied by any linker.)
(component
  (import "wasi:http/types@0.2.0" (instance
    (export "outgoing-request" (type (sub resource)))))
  (import "wasi:http/outgoing-handler@0.2.0" (instance
    (export "handle" (func (param "request" u32)))))
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli)))
