using System.Text;

namespace Wasmsharp.Integration;

// A large WASI command generated as binary WebAssembly: thousands of functions of straight-line integer
// arithmetic (not foldable: they depend on their argument), so compiling it is real work proportional to
// its size, as it would be for a big program. _start calls a few of them and prints one line.
public static class LargeModule
{
    public const string Greeting = "hello from a large module\n";

    private const byte I32 = 0x7f;

    /// <summary>Writes such a module as <c>BASEDIR/NAME.wasm</c> and imports it as <paramref name="image"/> (rootfs form,
    /// entrypoint <c>/NAME.wasm</c>); returns its path and size.</summary>
    public static (string Path, long Size) Import(PrivateContainerd containerd, string image, string name, long minBytes, string? ns = null)
    {
        var module = System.IO.Path.Combine(containerd.BaseDir, name + ".wasm");
        var size = Write(module, minBytes);
        var tar = System.IO.Path.Combine(containerd.BaseDir, name + "-image.tar");
        var built = Images.RunImageTool(["build", "--name", image, "--output", tar, "--platform", Images.HostPlatform,
            "--file", $"{module}:/{name}.wasm", "--entrypoint", $"/{name}.wasm"]);
        if (built.ExitCode != 0) throw new InvalidOperationException($"building {image} failed:\n{built}");
        Images.Import(containerd, tar, ns);
        return (module, size);
    }

    /// <summary>Writes a module of at least <paramref name="minBytes"/> bytes; returns its size.</summary>
    public static long Write(string path, long minBytes)
    {
        const int unitsPerFunction = 110; // about 2 KB of code per function
        var rng = new Random(20251124); // the same module every run, so cache keys are comparable
        var bodies = new List<byte[]>();
        long total = 0;
        while (total < minBytes)
        {
            var body = FunctionBody(rng, unitsPerFunction);
            bodies.Add(body);
            total += body.Length + 3;
        }

        // Function indices: 0 = fd_write (imported), 1 = _start, 2.. = generated.
        var module = new List<byte>();
        module.AddRange([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
        Section(module, 1, Vec(3, // types: fd_write, _start, generated
            [0x60, .. Vec(4, [I32, I32, I32, I32]), .. Vec(1, [I32])],
            [0x60, 0x00, 0x00],
            [0x60, .. Vec(1, [I32]), .. Vec(1, [I32])]));
        Section(module, 2, Vec(1, [.. Name("wasi_snapshot_preview1"), .. Name("fd_write"), 0x00, 0x00]));
        Section(module, 3, [.. Leb((uint)bodies.Count + 1), 0x01, .. bodies.SelectMany(_ => new byte[] { 0x02 })]);
        Section(module, 5, Vec(1, [0x00, 0x01])); // one page
        Section(module, 7, Vec(2, [.. Name("_start"), 0x00, 0x01], [.. Name("memory"), 0x02, 0x00]));

        var code = new List<byte>();
        code.AddRange(Leb((uint)bodies.Count + 1));
        var start = StartBody(bodies.Count);
        code.AddRange(Leb((uint)start.Length));
        code.AddRange(start);
        foreach (var body in bodies)
        {
            code.AddRange(Leb((uint)body.Length));
            code.AddRange(body);
        }
        Section(module, 10, [.. code]);

        // Data: an iovec at 0 pointing at the greeting at 16.
        var text = Encoding.ASCII.GetBytes(Greeting);
        byte[] iovec = [16, 0, 0, 0, (byte)text.Length, 0, 0, 0];
        Section(module, 11, Vec(2,
            [0x00, 0x41, 0x00, 0x0b, .. Leb((uint)iovec.Length), .. iovec],
            [0x00, 0x41, 0x10, 0x0b, .. Leb((uint)text.Length), .. text]));

        File.WriteAllBytes(path, [.. module]);
        return module.Count;
    }

    // _start: call the first and the last generated function, then fd_write(1, iovec 0, 1, nwritten 8).
    private static byte[] StartBody(int functions)
    {
        var b = new List<byte> { 0x00 }; // no locals
        foreach (var f in new[] { 2u, (uint)functions + 1 })
        {
            b.AddRange([0x41, 0x07, 0x10, .. Leb(f), 0x1a]); // i32.const 7; call f; drop
        }
        b.AddRange([0x41, 0x01, 0x41, 0x00, 0x41, 0x01, 0x41, 0x08, 0x10, 0x00, 0x1a, 0x0b]);
        return [.. b];
    }

    // (x) -> i32: one i32 local; each unit is x = rotl((x + c1) * c2, s) ^ ((x + c1) * c2).
    private static byte[] FunctionBody(Random rng, int units)
    {
        var b = new List<byte>(units * 20) { 0x01, 0x01, I32 }; // locals: 1 x i32
        b.AddRange([0x20, 0x00]); // local.get 0
        for (var i = 0; i < units; i++)
        {
            b.Add(0x41); b.AddRange(SLeb(rng.Next(1 << 16, 1 << 20)));          // i32.const c1
            b.Add(0x6a);                                                         // i32.add
            b.Add(0x41); b.AddRange(SLeb(rng.Next(1 << 16, 1 << 20) | 1));      // i32.const c2 (odd)
            b.Add(0x6c);                                                         // i32.mul
            b.AddRange([0x22, 0x01, 0x20, 0x01]);                                // local.tee 1; local.get 1
            b.Add(0x41); b.AddRange(SLeb(rng.Next(1, 31)));                      // i32.const s
            b.AddRange([0x77, 0x73]);                                            // i32.rotl; i32.xor
        }
        b.Add(0x0b);
        return [.. b];
    }

    private static void Section(List<byte> module, byte id, byte[] content)
    {
        module.Add(id);
        module.AddRange(Leb((uint)content.Length));
        module.AddRange(content);
    }

    private static byte[] Vec(int count, params byte[][] items) => [.. Leb((uint)count), .. items.SelectMany(i => i)];

    private static byte[] Name(string name) => [.. Leb((uint)name.Length), .. Encoding.UTF8.GetBytes(name)];

    private static byte[] Leb(uint value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            if (value != 0) b |= 0x80;
            bytes.Add(b);
        } while (value != 0);
        return [.. bytes];
    }

    private static byte[] SLeb(int value)
    {
        var bytes = new List<byte>();
        while (true)
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            if ((value == 0 && (b & 0x40) == 0) || (value == -1 && (b & 0x40) != 0))
            {
                bytes.Add(b);
                return [.. bytes];
            }
            bytes.Add((byte)(b | 0x80));
        }
    }
}
