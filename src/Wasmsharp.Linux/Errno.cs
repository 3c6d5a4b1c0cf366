using System.Runtime.InteropServices;
using Tmds.Linux;

namespace Wasmsharp.Linux;

/// <summary>A failed system call, carrying errno and the call that failed.</summary>
public sealed class LinuxException(string operation, int errno)
    : Exception($"{operation}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
{
    public int Errno { get; } = errno;

    internal static LinuxException Last(string operation) => new(operation, LibC.errno);
}
