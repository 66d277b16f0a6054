using System.Diagnostics;
using System.Globalization;
using Survey6.LoadGen;
using Survey6.Probe.Control;
using Survey6.Probe.Join;

if (args.Length > 0 && args[0] == "upload")
    return await UploadBench.RunAsync(args[1..]);

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(LoadOptions.Usage);
    return 2;
}

ThreadPool.GetMinThreads(out var workers, out var io);
ThreadPool.SetMinThreads(Math.Max(workers, 16), Math.Max(io, 16));

var work = options.WorkDirectory ?? Path.Combine(Path.GetTempPath(), "survey6-loadgen-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
Directory.CreateDirectory(work);
ServerUnderTest? server = null;
var probes = new List<SimulatedProbe>();
try
{
    Uri url;
    string token, pin;
    if (options.Server is { } target)
    {
        (url, token, pin) = (target, options.Token!, options.CaPin!);
    }
    else
    {
        var survey6 = options.Survey6 ?? Path.Combine(RepositoryRoot(), "survey6");
        server = await ServerUnderTest.StartAsync(survey6, Path.Combine(work, "server"), options.Probes);
        token = await server.CreateTokenAsync(options.Probes);
        (url, pin) = (server.GrpcUrl, server.Pin);
        Log($"server pid {server.ProcessId} at {url}");
    }

    // Join every probe through the real path (pin check, CA fetch, CSR, Join).
    var joinClock = Stopwatch.StartNew();
    var identities = new ControlChannelOptions[options.Probes];
    var joined = 0;
    await Parallel.ForAsync(0, options.Probes, new ParallelOptions { MaxDegreeOfParallelism = options.JoinParallel }, async (i, ct) =>
    {
        var directory = Path.Combine(work, "probes", i.ToString("D5", CultureInfo.InvariantCulture));
        var state = new ProbeStateDirectory(directory);
        if (!state.IsJoined)
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal) { ["load"] = "heartbeat" };
            await ProbeJoinClient.JoinAsync(new JoinSettings(url, token, pin, directory, labels, null) { Timeout = TimeSpan.FromMinutes(2) }, ct);
        }

        // The state directory names the server it joined; a rerun on a kept --work directory may listen elsewhere.
        identities[i] = ControlChannelOptions.FromStateDirectory(directory) with { Server = url, HeartbeatInterval = options.Interval };
        var n = Interlocked.Increment(ref joined);
        if (n % 1000 == 0)
            Log($"joined {n}");
    });
    var joinSeconds = joinClock.Elapsed.TotalSeconds;
    Log($"joined {options.Probes} probes in {joinSeconds:F1} s ({options.Probes / joinSeconds:F0}/s)");

    // One TLS connection and one Control.Connect stream per probe.
    var stats = new LoadStats();
    using var stop = new CancellationTokenSource();
    foreach (var identity in identities)
        probes.Add(new SimulatedProbe(identity, stats));
    var connectClock = Stopwatch.StartNew();
    var connected = 0;
    await Parallel.ForEachAsync(probes, new ParallelOptions { MaxDegreeOfParallelism = options.ConnectParallel }, async (probe, _) =>
    {
        try
        {
            await probe.ConnectAsync(stop.Token);
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or IOException or HttpRequestException or TimeoutException or InvalidOperationException)
        {
            Interlocked.Increment(ref stats.ConnectFailures);
            stats.Error(e);
        }

        var n = Interlocked.Increment(ref connected);
        if (n % 1000 == 0)
            Log($"connected {n}");
    });
    var connectSeconds = connectClock.Elapsed.TotalSeconds;
    Log($"opened {options.Probes - stats.ConnectFailures} streams in {connectSeconds:F1} s; {stats.ConnectFailures} failed");

    // Measured window: probe i sends at phase i/N of the interval, for the whole duration.
    var serverBefore = server?.Usage() ?? (0, 0);
    var clientBefore = ProcessUsage.Read(Environment.ProcessId);
    var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
    var end = start + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
    var phase = options.Interval.TotalSeconds * Stopwatch.Frequency / options.Probes;
    var runs = probes.Select((probe, i) => probe.RunAsync(start + (long)(i * phase), options.Interval, end, stop.Token)).ToList();
    var progress = Task.Run(async () =>
    {
        while (Stopwatch.GetTimestamp() < end)
        {
            var left = TimeSpan.FromSeconds((double)(end - Stopwatch.GetTimestamp()) / Stopwatch.Frequency);
            await Task.Delay(left < TimeSpan.FromSeconds(10) ? left.Add(TimeSpan.FromMilliseconds(1)) : TimeSpan.FromSeconds(10));
            Log($"sent {Interlocked.Read(ref stats.Sent)} acked {Interlocked.Read(ref stats.Acked)} errors {Interlocked.Read(ref stats.StreamErrors)}");
        }
    });
    await Task.WhenAll(runs);
    await progress;
    // Give the last heartbeats time for their acks, then count what is missing.
    var grace = Stopwatch.StartNew();
    while (Interlocked.Read(ref stats.Acked) < Interlocked.Read(ref stats.Sent) && grace.Elapsed < TimeSpan.FromSeconds(10))
        await Task.Delay(100);
    var serverAfter = server?.Usage() ?? (0, 0);
    var clientAfter = ProcessUsage.Read(Environment.ProcessId);
    var lost = probes.Sum(p => p.Unacked);

    var (p50, p99, p999, max) = stats.Latency.Summary();
    var seconds = options.Duration.TotalSeconds;
    var errors = stats.ConnectFailures + stats.StreamErrors + lost;
    var targetRate = options.Probes / options.Interval.TotalSeconds;
    Console.WriteLine();
    Console.WriteLine("| probes | interval | duration | target hb/s | sent | acked | achieved hb/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | join/s | connect s | server CPU % | server RSS MiB | loadgen CPU % | loadgen RSS MiB |");
    Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {options.Probes} | {options.Interval.TotalSeconds:0.###} s | {seconds:0.###} s | {targetRate:F0} | {stats.Sent} | {stats.Acked} | {stats.Acked / seconds:F1} | {p50:F2} | {p99:F2} | {p999:F2} | {max:F2} | {errors} | {options.Probes / joinSeconds:F0} | {connectSeconds:F1} | {(serverAfter.Item2 - serverBefore.Item2) / seconds * 100:F0} | {serverAfter.Item1:F0} | {(clientAfter.CpuSeconds - clientBefore.CpuSeconds) / seconds * 100:F0} | {clientAfter.RssMiB:F0} |"));
    if (errors > 0)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"errors: {stats.ConnectFailures} connect, {stats.StreamErrors} stream, {lost} heartbeats without ack; kinds: {string.Join(", ", stats.ErrorKinds.Select(k => $"{k.Key} x{k.Value}"))}"));
    }

    await stop.CancelAsync();
    await Task.WhenAll(probes.Select(p => p.CloseAsync()));
    return errors == 0 ? 0 : 1;
}
finally
{
    foreach (var probe in probes)
        probe.Dispose();
    server?.Dispose();
    if (!options.Keep && options.WorkDirectory is null)
    {
        try
        {
            Directory.Delete(work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

static void Log(string message) =>
    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{DateTime.UtcNow:HH:mm:ss} {message}"));

static string RepositoryRoot() => Repository.Root();
