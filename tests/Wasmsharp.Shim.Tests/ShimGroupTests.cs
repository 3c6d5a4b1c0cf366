namespace Wasmsharp.Shim.Tests;

public sealed class ShimGroupTests
{
    private int closes;

    private bool TryClose(ShimGroup group, bool empty, out TimeSpan? retryIn) => group.TryClose(() => empty, () => closes++, out retryIn);

    [Fact]
    public void An_empty_shim_with_nothing_on_its_way_closes_once_and_then_refuses_reservations()
    {
        var group = new ShimGroup();
        Assert.True(TryClose(group, empty: true, out _));
        Assert.False(TryClose(group, empty: true, out _));
        Assert.Equal(1, closes);
        Assert.False(group.TryReserve("late"));
        Assert.False(group.TryBeginCreate("late"));
    }

    [Fact]
    public void A_reservation_keeps_the_shim_until_its_create_has_come_and_gone()
    {
        var group = new ShimGroup();
        Assert.True(group.TryReserve("b"));
        Assert.False(TryClose(group, empty: true, out var retryIn)); // the last container was deleted; b is on its way
        Assert.NotNull(retryIn);
        Assert.True(group.TryBeginCreate("b"));
        Assert.False(TryClose(group, empty: true, out retryIn)); // Create under way
        Assert.Null(retryIn);
        group.EndCreate();
        Assert.False(TryClose(group, empty: false, out retryIn)); // b runs
        Assert.True(TryClose(group, empty: true, out _));         // b deleted
        Assert.Equal(1, closes);
    }

    [Fact]
    public void A_reservation_whose_container_never_comes_lapses()
    {
        var group = new ShimGroup(TimeSpan.FromMilliseconds(30));
        Assert.True(group.TryReserve("never"));
        Assert.False(TryClose(group, empty: true, out var retryIn));
        Assert.InRange(retryIn!.Value, TimeSpan.Zero, TimeSpan.FromMilliseconds(30));
        Thread.Sleep(60);
        Assert.True(TryClose(group, empty: true, out _));
    }

    [Fact]
    public void Reserving_and_closing_at_once_never_both_win()
    {
        for (var round = 0; round < 200; round++)
        {
            var group = new ShimGroup();
            var closed = false;
            bool reserved = false;
            var reserve = new Thread(() => reserved = group.TryReserve("b"));
            var close = new Thread(() => closed = group.TryClose(() => true, () => { }, out _));
            reserve.Start();
            close.Start();
            reserve.Join();
            close.Join();
            Assert.NotEqual(reserved, closed); // a start either holds the shim or is told to make a new one
        }
    }
}
