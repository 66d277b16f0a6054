using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Survey6.Packets.Files;
using Survey6.Contracts.V1;
using Survey6.Probe.Join;

namespace Survey6.Probe.Policies;

/// <summary>A fall back to the last known-good policy: which policy was dropped, for which, when and why.</summary>
public sealed record PolicyFallback(long FromVersion, long ToVersion, DateTimeOffset At, string Reason);

/// <summary>
/// The policy in force on disk and the crash-loop decision at start.
/// <list type="bullet">
/// <item><c>policy.json</c>: the policy last applied (absent: the join's policy from <c>probe.json</c>).</item>
/// <item><c>policy-good.json</c>: the last policy the probe ran <see cref="ProbePolicyOptions.HealthyAfter"/> with.</item>
/// <item><c>policy-starts.json</c>: start times while the policy in force has not proved itself.</item>
/// <item><c>policy-fallback.json</c>: the last fall back, until a new policy is applied.</item>
/// </list>
/// Every file is written atomically (temporary file, fsync, rename).
/// </summary>
public sealed class PolicyStore
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private readonly ProbeStateDirectory _state;
    private readonly ProbePolicyOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private Policy _current;
    private DateTimeOffset? _appliedAt;
    private bool _proven;
    private PolicyFallback? _fallback;

    public PolicyStore(ProbeStateDirectory state, ProbePolicyOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(state);
        _state = state;
        _options = options;
        _time = time;
        Join = ReadJoinPolicy(state) ?? new Policy();
        var applied = ReadPolicyFile(state.PolicyPath);
        _current = applied?.Policy ?? Join;
        _appliedAt = applied?.At;
        _proven = applied is null || ReadPolicyFile(state.GoodPolicyPath)?.Policy.Version == applied.Policy.Version;
        _fallback = ReadFallback(state.PolicyFallbackPath);
    }

    /// <summary>The policy received at join: the baseline the probe's own configuration stands for.</summary>
    public Policy Join { get; }

    public Policy Current
    {
        get
        {
            lock (_lock)
                return _current;
        }
    }

    public DateTimeOffset? AppliedAt
    {
        get
        {
            lock (_lock)
                return _appliedAt;
        }
    }

    /// <summary>True once the policy in force ran healthy (or it is the join's, which has nothing to fall back to).</summary>
    public bool Proven
    {
        get
        {
            lock (_lock)
                return _proven;
        }
    }

    public PolicyFallback? Fallback
    {
        get
        {
            lock (_lock)
                return _fallback;
        }
    }

    /// <summary>
    /// Records a start of the daemon. If the policy in force has not proved itself and the daemon already started
    /// <see cref="ProbePolicyOptions.CrashLoopStarts"/> times within <see cref="ProbePolicyOptions.CrashLoopWindow"/>
    /// without getting healthy, falls back to the last known-good policy (or the join's) and returns the fall back.
    /// </summary>
    public PolicyFallback? RecordStart()
    {
        lock (_lock)
        {
            if (_proven)
            {
                File.Delete(_state.PolicyStartsPath);
                return null;
            }

            var now = _time.GetUtcNow();
            var starts = ReadStarts(_current.Version).Where(s => now - s < _options.CrashLoopWindow && s <= now).ToList();
            if (starts.Count < _options.CrashLoopStarts)
            {
                starts.Add(now);
                WriteStarts(_current.Version, starts);
                return null;
            }

            var good = ReadPolicyFile(_state.GoodPolicyPath);
            var to = good?.Policy ?? Join;
            var reason = string.Create(CultureInfo.InvariantCulture,
                $"policy {_current.Version} was in force for {starts.Count} starts within {_options.CrashLoopWindow} that never ran healthy for {_options.HealthyAfter}; back to {(good is null ? "the join's" : "the last known-good")} policy {to.Version}");
            var fallback = new PolicyFallback(_current.Version, to.Version, now, reason);
            WriteJson(_state.PolicyFallbackPath, new JsonObject
            {
                ["from_version"] = fallback.FromVersion,
                ["to_version"] = fallback.ToVersion,
                ["at"] = now.ToString("o", CultureInfo.InvariantCulture),
                ["reason"] = reason,
            });
            if (good is null)
                File.Delete(_state.PolicyPath);
            else
                WritePolicyFile(_state.PolicyPath, good.Policy, good.At);
            File.Delete(_state.PolicyStartsPath);
            _current = to;
            _appliedAt = good?.At;
            _proven = true;
            _fallback = fallback;
            return fallback;
        }
    }

    /// <summary>Makes <paramref name="policy"/> the policy in force, not proven yet; this run counts as its first start.</summary>
    public void Adopt(Policy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            // Starts first: a crash right after the rename must find this run counted.
            WriteStarts(policy.Version, [now]);
            WritePolicyFile(_state.PolicyPath, policy, now);
            File.Delete(_state.PolicyFallbackPath);
            _current = policy;
            _appliedAt = now;
            _proven = false;
            _fallback = null;
        }
    }

    /// <summary>The policy in force ran healthy long enough: it becomes the last known-good one.</summary>
    public bool MarkHealthy()
    {
        lock (_lock)
        {
            if (_proven)
                return false;
            WritePolicyFile(_state.GoodPolicyPath, _current, _appliedAt ?? _time.GetUtcNow());
            File.Delete(_state.PolicyStartsPath);
            _proven = true;
            return true;
        }
    }

    private List<DateTimeOffset> ReadStarts(long version)
    {
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(_state.PolicyStartsPath));
            if (json?["version"]?.GetValue<long>() != version)
                return [];
            return [.. (json["starts"]?.AsArray() ?? []).Select(n => DateTimeOffset.Parse(n!.GetValue<string>(), CultureInfo.InvariantCulture))];
        }
        catch (Exception e) when (e is IOException or JsonException or FormatException or InvalidOperationException)
        {
            return [];
        }
    }

    private void WriteStarts(long version, List<DateTimeOffset> starts) => WriteJson(_state.PolicyStartsPath, new JsonObject
    {
        ["version"] = version,
        ["starts"] = new JsonArray([.. starts.Select(s => (JsonNode)s.ToString("o", CultureInfo.InvariantCulture))]),
    });

    private static void WritePolicyFile(string path, Policy policy, DateTimeOffset at) => WriteJson(path, new JsonObject
    {
        ["applied_at"] = at.ToString("o", CultureInfo.InvariantCulture),
        ["policy"] = JsonNode.Parse(JsonFormatter.Default.Format(policy)),
    });

    private static void WriteJson(string path, JsonObject json) =>
        SecureFiles.WriteAtomically(path, json.ToJsonString(Indented) + "\n", SecureFiles.OwnerOnlyFile);

    private static (Policy Policy, DateTimeOffset At)? ReadPolicyFileCore(string path)
    {
        var json = JsonNode.Parse(File.ReadAllText(path));
        if (json?["policy"] is not { } node)
            return null;
        var at = json["applied_at"]?.GetValue<string>() is { } text ? DateTimeOffset.Parse(text, CultureInfo.InvariantCulture) : File.GetLastWriteTimeUtc(path);
        return (JsonParser.Default.Parse<Policy>(node.ToJsonString()), at);
    }

    private static PolicyFile? ReadPolicyFile(string path)
    {
        try
        {
            return ReadPolicyFileCore(path) is { } read ? new PolicyFile(read.Policy, read.At) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or FormatException or InvalidProtocolBufferException or InvalidJsonException or InvalidOperationException)
        {
            // Missing or damaged: as if never written (a damaged policy.json means the join's policy).
            return null;
        }
    }

    private static PolicyFallback? ReadFallback(string path)
    {
        try
        {
            var json = JsonNode.Parse(File.ReadAllText(path));
            if (json?["from_version"]?.GetValue<long>() is not { } from || json["to_version"]?.GetValue<long>() is not { } to || json["at"]?.GetValue<string>() is not { } at)
                return null;
            return new PolicyFallback(from, to, DateTimeOffset.Parse(at, CultureInfo.InvariantCulture), json["reason"]?.GetValue<string>() ?? "");
        }
        catch (Exception e) when (e is IOException or JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    internal static Policy? ReadJoinPolicy(ProbeStateDirectory state)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(state.ProbeJsonPath))?["policy"] is { } node ? JsonParser.Default.Parse<Policy>(node.ToJsonString()) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidProtocolBufferException or InvalidJsonException)
        {
            return null;
        }
    }

    private sealed record PolicyFile(Policy Policy, DateTimeOffset At);
}
