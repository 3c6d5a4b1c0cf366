using Wasmsharp.Shim;

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
