using Wasmsharp.Linux;

public class SignalsTests
{
    [Theory]
    [InlineData(9, true, 137)]
    [InlineData(15, true, 143)]
    [InlineData(2, true, 130)]
    [InlineData(1, true, 129)]
    [InlineData(17, false, 145)]
    [InlineData(28, false, 156)]
    [InlineData(19, false, 147)]
    [InlineData(0, false, 128)]
    public void TerminatingSignalsAndExitStatuses(int signal, bool terminates, int status)
    {
        Assert.Equal(terminates, Signals.Terminates(signal));
        Assert.Equal(status, Signals.ExitStatus(signal));
    }
}

public class SignalNameTests
{
    [Theory]
    [InlineData(9, "SIGKILL")]
    [InlineData(15, "SIGTERM")]
    [InlineData(31, "SIGSYS")]
    [InlineData(34, "SIGRTMIN")]
    [InlineData(37, "SIGRTMIN+3")]
    [InlineData(0, "0")]
    [InlineData(65, "65")]
    public void Names(int signal, string name) => Assert.Equal(name, Signals.Name(signal));
}
