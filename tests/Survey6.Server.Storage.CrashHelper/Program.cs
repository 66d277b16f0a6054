using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Survey6.Server.Storage;

// Uploads a capture into a store and stops where told, then waits to be killed (SIGKILL, so nothing is cleaned up):
//   write DATA PROBE FILE BYTES   write the first BYTES bytes, then wait
//   stream DATA PROBE FILE        write the file in 1 KiB chunks, pausing between them, until killed
//   step DATA PROBE FILE STEP     upload everything and complete, stopping right after commit step STEP
// Progress goes to stdout, one line each, so the test knows when to kill.
if (args.Length < 4)
{
    Console.Error.WriteLine("usage: write|stream|step DATA PROBE FILE [BYTES|STEP]");
    return 2;
}

var (mode, data, probe, file) = (args[0], args[1], args[2], args[3]);
var bytes = File.ReadAllBytes(file);
var store = new CaptureStore(
    Options.Create(new CaptureStoreOptions { DataDirectory = data }),
    CaptureStoredSink.FromDelegate((_, _) => ValueTask.CompletedTask));
var header = new UploadHeader(
    Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes.Length,
    new DateTimeOffset(2025, 3, 14, 12, 0, 0, TimeSpan.Zero), new DateTimeOffset(2025, 3, 14, 12, 5, 0, TimeSpan.Zero), "");

switch (mode)
{
    case "write":
    {
        int count = int.Parse(args[4], CultureInfo.InvariantCulture);
        var session = await store.BeginAsync(probe, header);
        for (int at = (int)session.Offset; at < count;)
        {
            int n = Math.Min(4096, count - at);
            await session.WriteAsync(at, bytes.AsMemory(at, n));
            at += n;
        }
        Report($"READY {session.Offset}");
        break;
    }
    case "stream":
    {
        var session = await store.BeginAsync(probe, header);
        Report("STARTED");
        for (int at = 0; at < bytes.Length;)
        {
            int n = Math.Min(1024, bytes.Length - at);
            await session.WriteAsync(at, bytes.AsMemory(at, n));
            at += n;
            Thread.Sleep(1);
        }
        Report("DONE");
        break;
    }
    case "step":
    {
        var target = Enum.Parse<CommitStep>(args[4]);
        store.StepHook = step =>
        {
            if (step == target)
            {
                Report($"AT {step}");
                Thread.Sleep(Timeout.Infinite);
            }
        };
        var session = await store.BeginAsync(probe, header);
        await session.WriteAsync(0, bytes);
        await session.CompleteAsync(header.Sha256);
        Report("COMPLETED");
        break;
    }
    default:
        Console.Error.WriteLine($"unknown mode {mode}");
        return 2;
}

Thread.Sleep(Timeout.Infinite);
return 0;

static void Report(string line)
{
    Console.Out.WriteLine(line);
    Console.Out.Flush();
}
