using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Wasmsharp.Linux;

/// <summary>
/// A pseudo-terminal pair: the master we copy to and from the client, the slave the guest uses as its
/// stdio. We keep a slave descriptor open ourselves (O_NOCTTY) so the master does not report EIO before
/// the guest has opened its own, and so a guest that closes its stdio does not hang up the terminal.
/// </summary>
public sealed partial class Pty : IDisposable
{
    private const int O_RDWR = 0x2, O_NOCTTY = 0x100, O_CLOEXEC = 0x80000;
    private const ulong TIOCSWINSZ = 0x5414, TIOCGWINSZ = 0x5413;

    [StructLayout(LayoutKind.Sequential)]
    private struct WinSize
    {
        public ushort Row, Col, XPixel, YPixel;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_openpt(int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int grantpt(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int unlockpt(int fd);
    [LibraryImport("libc")]
    private static unsafe partial int ptsname_r(int fd, byte* buf, nuint len);
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int ioctl_winsize(int fd, ulong request, WinSize* size);
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static unsafe partial int sys_open(byte* path, int flags, uint mode);
    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int tcgetattr(int fd, byte* termios);

    // glibc's struct termios on linux-x64: four 32-bit flag words, c_line, then c_cc; 60 bytes in all.
    private const int LflagOffset = 12, CcOffset = 17, ISIG = 0x1, VINTR = 0, VQUIT = 1;

    /// <summary>
    /// The terminal's interrupt and quit characters (^C, ^\ by default) when its line discipline turns them into
    /// signals (ISIG), else null. Read through the master, which shares the slave's settings.
    /// </summary>
    public static unsafe (byte Interrupt, byte Quit)? SignalKeys(SafeFileHandle master)
    {
        var termios = stackalloc byte[64];
        if (tcgetattr((int)master.DangerousGetHandle(), termios) != 0)
            return null;
        var lflag = *(uint*)(termios + LflagOffset);
        return (lflag & ISIG) == 0 ? null : (termios[CcOffset + VINTR], termios[CcOffset + VQUIT]);
    }

    public SafeFileHandle Master { get; }
    /// <summary>Our own descriptor of the slave; the guest opens <see cref="SlavePath"/> (or a /proc path to this).</summary>
    public SafeFileHandle Slave { get; }
    public string SlavePath { get; }

    private Pty(SafeFileHandle master, SafeFileHandle slave, string slavePath)
    {
        Master = master;
        Slave = slave;
        SlavePath = slavePath;
    }

    public static unsafe Pty Open()
    {
        var m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (m < 0) throw new LinuxException("posix_openpt", Marshal.GetLastPInvokeError());
        var master = new SafeFileHandle(m, ownsHandle: true);
        try
        {
            if (grantpt(m) != 0) throw new LinuxException("grantpt", Marshal.GetLastPInvokeError());
            if (unlockpt(m) != 0) throw new LinuxException("unlockpt", Marshal.GetLastPInvokeError());
            var buf = stackalloc byte[128];
            var rc = ptsname_r(m, buf, 128);
            if (rc != 0) throw new LinuxException("ptsname_r", rc);
            var path = Encoding.UTF8.GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(buf));
            var s = sys_open(buf, O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
            if (s < 0) throw new LinuxException($"open {path}", Marshal.GetLastPInvokeError());
            return new Pty(master, new SafeFileHandle(s, ownsHandle: true), path);
        }
        catch
        {
            master.Dispose();
            throw;
        }
    }

    /// <summary>TIOCSWINSZ: the terminal's size in columns and rows.</summary>
    public void Resize(ushort columns, ushort rows) => Resize(Master, columns, rows);

    /// <summary>TIOCSWINSZ on a master of another pty (e.g. one runc made for a container).</summary>
    public static unsafe void Resize(SafeFileHandle master, ushort columns, ushort rows)
    {
        var size = new WinSize { Col = columns, Row = rows };
        var added = false;
        master.DangerousAddRef(ref added);
        try
        {
            if (ioctl_winsize((int)master.DangerousGetHandle(), TIOCSWINSZ, &size) != 0)
            {
                throw new LinuxException("ioctl(TIOCSWINSZ)", Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            if (added) master.DangerousRelease();
        }
    }

    /// <summary>TIOCGWINSZ: (columns, rows).</summary>
    public unsafe (ushort Columns, ushort Rows) Size()
    {
        var size = new WinSize();
        if (ioctl_winsize((int)Master.DangerousGetHandle(), TIOCGWINSZ, &size) != 0)
        {
            throw new LinuxException("ioctl(TIOCGWINSZ)", Marshal.GetLastPInvokeError());
        }
        return (size.Col, size.Row);
    }

    public void Dispose()
    {
        Slave.Dispose();
        Master.Dispose();
    }
}
