using Wasmsharp.Integration;

namespace Wasmsharp.Integration.Tests;

// kubectl exec / attach / port-forward on a wasmsharp pod: the CRI call returns a URL on containerd's streaming
// server, which the test drives as a WebSocket client (v4.channel.k8s.io) as kubectl's requests reach it.
[Collection(CriCollection.Name)]
public sealed class CriStreamingTests(CriFixture f)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static Cri.ContainerConfig Wasm(string name, params string[] command) => CriClient.ContainerConfig(name, Images.WasmTests, command);

    private void CheckEnded(CriStream stream, int exitCode, string id)
    {
        f.Check(stream.WaitClosed(Wait), $"the stream did not end:\n{stream}", id);
        f.Check(stream.ExitCode() == exitCode, $"expected exit code {exitCode}:\n{stream}", id);
    }

    // The processes of a container, as `ctr task ps` lists them (the init and its live execs).
    private int ProcessCount(string id)
    {
        var ps = f.CtrK8s("task", "ps", id);
        return ps.ExitCode == 0 ? ps.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Count() : -1;
    }

    [Fact]
    public void Exec_streams_a_wasm_modules_stdout_stderr_and_exit_code()
    {
        using var pod = f.RunPod("stream-exec", CriFixture.WasmHandler);
        var id = pod.Start(Wasm("main", CriFixture.WasmSleep));

        using (var hello = f.Client.Exec(id, ["/hello.wasm", "streamed"]))
        {
            CheckEnded(hello, 0, id);
            f.Check(hello.Text(CriStream.StdoutChannel) == "hello from wasm\nstreamed\n" && hello.Text(CriStream.StderrChannel) == "hello on stderr\n",
                $"exec /hello.wasm:\n{hello}", id);
        }
        // kubectl prints "command terminated with exit code 3" from the status's ExitCode cause.
        using (var failed = f.Client.Exec(id, ["/exit.wasm", "3"]))
        {
            CheckEnded(failed, 3, id);
            f.Check(failed.Text(CriStream.StatusChannel).Contains("\"NonZeroExitCode\"", StringComparison.Ordinal), $"status of exit 3:\n{failed}", id);
        }
        f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, "the container runs on after its execs", id);
    }

    // v4 cannot end stdin alone: kubectl's `exec -i` input ends when the connection closes; containerd then closes
    // the exec's stdin (CloseIO), and a module reading to end-of-file ends.
    [Fact]
    public void Exec_pipes_stdin_to_a_wasm_module_and_closing_the_stream_ends_its_input()
    {
        using var pod = f.RunPod("stream-stdin", CriFixture.WasmHandler);
        var id = pod.Start(Wasm("main", CriFixture.WasmSleep));

        using var cat = f.Client.Exec(id, ["/cat.wasm", "lines"], stdin: true);
        cat.SendStdin("ping\n");
        f.Check(cat.WaitFor(CriStream.StdoutChannel, o => o == "ping\n", Wait), $"echo of ping:\n{cat}", id);
        cat.SendStdin("pong\n");
        f.Check(cat.WaitFor(CriStream.StdoutChannel, o => o == "ping\npong\n", Wait), $"echo of pong:\n{cat}", id);
        f.Check(ProcessCount(id) == 2, $"the exec runs beside the init: {f.CtrK8s("task", "ps", id)}", id);

        cat.Close();
        f.Check(cat.WaitClosed(Wait), $"the server did not close:\n{cat}", id);
        ContainerdFixture.Eventually(() => ProcessCount(id) == 1, Wait);
        f.Check(ProcessCount(id) == 1, $"the exec did not end at end-of-file: {f.CtrK8s("task", "ps", id)}", id);
    }

    [Fact]
    public void Exec_with_a_terminal_gives_a_wasm_module_a_tty()
    {
        using var pod = f.RunPod("stream-tty", CriFixture.WasmHandler);
        var id = pod.Start(Wasm("main", CriFixture.WasmSleep));

        // With a terminal stderr is the terminal too: kubectl asks for no stderr stream.
        using var tty = f.Client.Exec(id, ["/tty.wasm", "echo"], stdin: true, stderr: false, tty: true);
        tty.Resize(100, 30);
        // Its whole line first (the "\n" may come in a write of its own): typed earlier, the echo would land inside it.
        f.Check(tty.WaitFor(CriStream.StdoutChannel, o => o.Contains("stderr tty=1\r\n", StringComparison.Ordinal), Wait), $"the module's report:\n{tty}", id);
        tty.SendStdin("typed\r");
        CheckEnded(tty, 0, id);
        var output = tty.Text(CriStream.StdoutChannel);
        // The terminal echoes what was typed and maps the module's \n to \r\n.
        f.Check(output.Contains("stdin tty=1 stdout tty=1 stderr tty=1\r\n", StringComparison.Ordinal) && output.Contains("got: typed\r\n", StringComparison.Ordinal),
            $"exec -t /tty.wasm echo:\n{tty}", id);
    }

    // kubectl attach -i to a container made with stdin (`stdin: true` in the pod spec, not stdinOnce).
    [Fact]
    public void Attach_reaches_a_wasm_containers_stdin_and_stdout()
    {
        using var pod = f.RunPod("stream-attach", CriFixture.WasmHandler);
        var config = Wasm("main", "/cat.wasm", "lines");
        config.Stdin = true;
        var id = pod.Start(config);

        foreach (var line in new[] { "first attach\n", "second attach\n" })
        {
            using var attach = f.Client.Attach(id, stdin: true, stderr: false);
            attach.SendStdin(line);
            f.Check(attach.WaitFor(CriStream.StdoutChannel, o => o.Contains(line, StringComparison.Ordinal), Wait), $"attach, {line.Trim()}:\n{attach}", id);
            attach.Close();
            f.Check(attach.WaitClosed(Wait), $"attach did not end:\n{attach}", id);
        }
        // Not stdinOnce: the container's stdin stays open when an attach ends, and its output is in the CRI log.
        f.Check(f.Client.ContainerStatus(id).State == Cri.ContainerState.ContainerRunning, "the container runs on after the attaches", id);
        ContainerdFixture.Eventually(() => CriClient.LogText(pod.LogPath("main")) == "first attach\nsecond attach\n", Wait);
        Assert.Equal("first attach\nsecond attach\n", CriClient.LogText(pod.LogPath("main")));
    }

    [Fact]
    public void Exec_into_a_native_sidecar_of_a_wasm_pod()
    {
        using var pod = f.RunPod("stream-native", CriFixture.WasmHandler);
        pod.Start(Wasm("wasm", CriFixture.WasmSleep));
        var sidecar = pod.Start(CriClient.ContainerConfig("sidecar", Images.Busybox, CriFixture.NativeSleep));

        using (var sh = f.Client.Exec(sidecar, ["/bin/sh", "-c", "read line; echo \"out $line\"; echo err >&2; exit 4"], stdin: true))
        {
            sh.SendStdin("typed\n");
            CheckEnded(sh, 4, sidecar);
            f.Check(sh.Text(CriStream.StdoutChannel) == "out typed\n" && sh.Text(CriStream.StderrChannel) == "err\n", $"exec sh:\n{sh}", sidecar);
        }
        // kubectl exec -it: runc makes the terminal (the shim receives its master on runc's console socket); the
        // size kubectl sends reaches it (ResizePty), and the shell's exit status ends the stream.
        using (var tty = f.Client.Exec(sidecar, ["/bin/sh"], stdin: true, stderr: false, tty: true))
        {
            tty.Resize(120, 40);
            f.Check(TypeUntil(tty, "stty size\r", "40 120"), $"stty size in exec -t:\n{tty}", sidecar);
            tty.SendStdin("tty\r");
            f.Check(tty.WaitFor(CriStream.StdoutChannel, o => o.Contains("/dev/pts/", StringComparison.Ordinal), Wait), $"tty in exec -t:\n{tty}", sidecar);
            tty.SendStdin("exit 5\r");
            CheckEnded(tty, 5, sidecar);
        }
    }

    // A resize travels apart from stdin (ResizePty), so the command is typed again until the new size shows.
    private static bool TypeUntil(CriStream stream, string keys, string expected)
    {
        for (var i = 0; i < 20; i++)
        {
            stream.SendStdin(keys);
            if (stream.WaitFor(CriStream.StdoutChannel, o => o.Contains(expected, StringComparison.Ordinal), TimeSpan.FromSeconds(1))) return true;
        }
        return false;
    }

    // A pod spec's `tty: true, stdin: true` native container: its shell runs on the terminal runc made, kubectl
    // attach -it reaches it, and its exit status is the container's.
    [Fact]
    public void A_native_container_with_a_terminal_is_attached_resized_and_its_exit_code_reported()
    {
        using var pod = f.RunPod("native-tty", CriFixture.WasmHandler);
        var config = CriClient.ContainerConfig("shell", Images.Busybox, ["/bin/sh"]);
        config.Tty = true;
        config.Stdin = true;
        var id = pod.Start(config);

        using var attach = f.Client.Attach(id, stdin: true, stderr: false, tty: true);
        attach.SendStdin("tty; echo attached-$((40+2))\r");
        f.Check(attach.WaitFor(CriStream.StdoutChannel, o => o.Contains("attached-42", StringComparison.Ordinal) && o.Contains("/dev/pts/", StringComparison.Ordinal), Wait),
            $"attach -it:\n{attach}", id);
        attach.Resize(100, 30);
        f.Check(TypeUntil(attach, "stty size\r", "30 100"), $"stty size after a resize:\n{attach}", id);
        attach.SendStdin("exit 7\r");
        var status = f.Client.WaitExited(id, Wait);
        f.Check(status.ExitCode == 7, $"the shell's exit: {status.ExitCode} ({status.Reason})", id);
        // A terminal has one stream: what the shell echoed is in the CRI log as stdout.
        f.Check(CriClient.LogText(pod.LogPath("shell")).Contains("attached-42", StringComparison.Ordinal), $"CRI log:\n{CriClient.LogText(pod.LogPath("shell"))}", id);
    }

    // containerd forwards a port by dialing 127.0.0.1 inside the pod's network namespace itself: a Wasm server of
    // the pod answers, as a native one would.
    [Fact]
    public void PortForward_reaches_a_wasm_server_in_the_pod()
    {
        using var pod = f.RunPod("stream-forward", CriFixture.WasmHandler);
        var server = pod.Start(Wasm("server", "/httpd.wasm", "8080"));
        var netns = f.Client.PodNetnsPath(pod.Id) ?? "";
        f.Check(NetNs.HttpGetWhenUp(netns, 8080).StartsWith("HTTP/1.0 200", StringComparison.Ordinal), "the server did not come up", server);

        using var forward = f.Client.PortForward(pod.Id, 8080);
        // Each channel opens with the port number (2 bytes, little-endian).
        f.Check(forward.WaitFor(0, o => o.Length >= 2, Wait), $"no port header:\n{forward}", pod.Id);
        f.Check(forward.Received(0) is [0x90, 0x1f, ..], $"port header of channel 0: {Convert.ToHexString(forward.Received(0))}", pod.Id);
        forward.Send(0, "GET /forwarded HTTP/1.0\r\n\r\n"u8);
        f.Check(forward.WaitFor(0, o => o.Contains("hello from wasmsharp", StringComparison.Ordinal), Wait),
            $"forwarded answer: {forward.Text(0)} / errors: {forward.Text(1)}", pod.Id);
        f.Check(System.Text.Encoding.ASCII.GetString(forward.Received(0)[2..]).StartsWith("HTTP/1.0 200", StringComparison.Ordinal), $"forwarded answer: {forward.Text(0)}", pod.Id);
        ContainerdFixture.Eventually(() => CriClient.LogText(pod.LogPath("server")).Contains("GET /forwarded 200", StringComparison.Ordinal), Wait);
        Assert.Matches(@"(?m)^GET /forwarded 200 \d+ 127\.0\.0\.1:\d+$", CriClient.LogText(pod.LogPath("server")));
    }
}
