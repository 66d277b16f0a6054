using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Survey6.Server.Control;

public enum ProbeChangeKind
{
    /// <summary>A heartbeat was recorded; <see cref="ProbeChange.State"/> is the state after it.</summary>
    Heartbeat,
    /// <summary>The derived state changed (revocation included); <see cref="ProbeChange.Reasons"/> say why.</summary>
    StateChanged,
    /// <summary>The probe opened its control stream.</summary>
    Connected,
    /// <summary>The probe's control stream ended.</summary>
    Disconnected,
    /// <summary>An operator issued a command (in this process or through the CLI).</summary>
    CommandIssued,
    /// <summary>A command was written to the probe's stream.</summary>
    CommandDelivered,
    /// <summary>The probe answered a command; <see cref="ProbeChange.Ok"/> says how it went.</summary>
    CommandCompleted,
}

/// <summary>
/// Something that happened to a probe, as pushed to <see cref="IProbeStateNotifier"/> subscribers.
/// It names the probe and what changed; read the details with <see cref="ProbeHealthQuery"/> or
/// <see cref="ProbeCommands"/>.
/// </summary>
public sealed record ProbeChange(ProbeChangeKind Kind, string ProbeId, DateTimeOffset At)
{
    public string? State { get; init; }

    public string? PreviousState { get; init; }

    public IReadOnlyList<HealthReason> Reasons { get; init; } = [];

    public string? CommandId { get; init; }

    public ProbeCommandKind? CommandKind { get; init; }

    /// <summary>For <see cref="ProbeChangeKind.CommandCompleted"/>: the probe's verdict.</summary>
    public bool? Ok { get; init; }

    /// <summary>The row in the events table this change was recorded as, if any.</summary>
    internal long? EventId { get; init; }
}

/// <summary>
/// Live probe changes for in-process consumers (the web UI's live view, the JSON API's streams).
/// Each subscriber has its own bounded buffer: one that falls behind loses its oldest changes
/// rather than slowing the server down, so treat a change as "look again", not as the data.
/// </summary>
public interface IProbeStateNotifier
{
    /// <summary>
    /// Changes from now on, until the subscription is disposed. In the server, "now" comes after every
    /// heartbeat acknowledged before the call is stored, which this awaits (without holding a thread).
    /// </summary>
    ValueTask<ProbeChangeSubscription> SubscribeAsync(int capacity = 1024, CancellationToken cancellationToken = default);
}

/// <summary>One subscriber's feed; dispose it to stop receiving.</summary>
public sealed class ProbeChangeSubscription : IDisposable
{
    private readonly Channel<ProbeChange> _channel;
    private readonly Action<ProbeChangeSubscription> _unsubscribe;

    internal ProbeChangeSubscription(int capacity, Action<ProbeChangeSubscription> unsubscribe)
    {
        _channel = Channel.CreateBounded<ProbeChange>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = false,
            SingleWriter = false,
        });
        _unsubscribe = unsubscribe;
    }

    public ChannelReader<ProbeChange> Changes => _channel.Reader;

    internal void Offer(ProbeChange change) => _channel.Writer.TryWrite(change);

    public void Dispose()
    {
        _unsubscribe(this);
        _channel.Writer.TryComplete();
    }
}

/// <summary>
/// The server's <see cref="IProbeStateNotifier"/>. Changes made in this process are published at
/// once; changes another process (the CLI) writes to state.db are published when the control
/// service's poller sees their event rows. <see cref="Claim"/> keeps one change from being
/// published twice when it is both.
/// </summary>
public sealed class ProbeNotifier : IProbeStateNotifier
{
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<long, byte> _claimedEvents = new();
    private ProbeChangeSubscription[] _subscribers = [];

    /// <summary>In-process reactions (wake a probe's stream, close it, re-evaluate); run synchronously once subscribers have the change.</summary>
    internal Action<ProbeChange>? Reaction { get; set; }

    /// <summary>Awaited before a subscription starts: the heartbeat writer catches up, so "from now on" begins after every acknowledged heartbeat.</summary>
    internal Func<CancellationToken, ValueTask>? BeforeSubscribe { get; set; }

    public async ValueTask<ProbeChangeSubscription> SubscribeAsync(int capacity = 1024, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        if (BeforeSubscribe is { } catchUp)
            await catchUp(cancellationToken).ConfigureAwait(false);
        var subscription = new ProbeChangeSubscription(capacity, Unsubscribe);
        lock (_lock)
            _subscribers = [.. _subscribers, subscription];
        return subscription;
    }

    /// <summary>Marks an event row as published by this process, before its transaction commits, so the poller skips it.</summary>
    internal void Claim(long eventId) => _claimedEvents.TryAdd(eventId, 0);

    /// <summary>For the poller: true if this process already published the event (and forgets it).</summary>
    internal bool TakeClaim(long eventId) => _claimedEvents.TryRemove(eventId, out _);

    /// <summary>Drops claims the poller has passed (their transactions rolled back).</summary>
    internal void ForgetClaimsUpTo(long eventId)
    {
        foreach (var id in _claimedEvents.Keys)
        {
            if (id <= eventId)
                _claimedEvents.TryRemove(id, out _);
        }
    }

    internal void Publish(ProbeChange change)
    {
        // Subscribers first, so they see a command issued before the state change it causes.
        var subscribers = Volatile.Read(ref _subscribers);
        foreach (var subscriber in subscribers)
            subscriber.Offer(change);
        Reaction?.Invoke(change);
    }

    private void Unsubscribe(ProbeChangeSubscription subscription)
    {
        lock (_lock)
            _subscribers = _subscribers.Where(s => !ReferenceEquals(s, subscription)).ToArray();
    }
}
