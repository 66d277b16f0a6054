using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Survey6.Probe.Join;
using Survey6.Probe.Upload;

namespace Survey6.Cli;

/// <summary>
/// <c>survey6 probe upload FILE</c>: one upload with the probe's identity, retried and resumed like the daemon's,
/// printing the acknowledgement. The file is never deleted.
/// </summary>
public static class ProbeUploadCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "A pcap or pcapng capture file" };
        var stateDir = new Option<string>("--state-dir")
        {
            Description = "The joined probe's state directory",
            DefaultValueFactory = _ => JoinSettings.DefaultStateDirectory,
        };
        var manifest = new Option<string>("--manifest") { Description = "A capture manifest (docs/protocol.md) to send with it (default: one built by reading FILE)" };
        var rate = new Option<string>("--rate") { Description = "Bytes per second at most, e.g. 500K or 2M (default: no limit)" };
        var attempts = new Option<int>("--attempts") { Description = "Attempts before giving up on transient failures", DefaultValueFactory = _ => 8 };
        var command = new Command("upload", "Upload one capture to the server this probe joined; prints the acknowledgement. Does not delete the file")
        {
            file, stateDir, manifest, rate, attempts,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var path = Path.GetFullPath(parse.GetValue(file)!);
            long bytesPerSecond = 0;
            if (parse.GetValue(rate) is { } rateText && (!CliParsing.TryParseBytes(rateText, out bytesPerSecond) || bytesPerSecond == 0))
                return Fail(error, $"--rate '{rateText}' is not a byte count like 500K, 2M or 1048576");
            if (parse.GetValue(attempts) < 1)
                return Fail(error, $"--attempts {parse.GetValue(attempts)}: expected a count of attempts, 1 or more");
            try
            {
                // The server checks a given manifest against the contract and says what is wrong with it.
                var description = parse.GetValue(manifest) is { } manifestPath
                    ? GivenManifest(path, manifestPath)
                    : UploadManifest.FromCapture(path);
                using var connection = ProbeConnection.Open(new ProbeStateDirectory(parse.GetValue(stateDir)!));
                var uploader = new CaptureUploader(
                    connection.Channel.CreateCallInvoker(),
                    Microsoft.Extensions.Options.Options.Create(new CaptureUploaderOptions { MaxAttempts = parse.GetValue(attempts) }),
                    bytesPerSecond > 0 ? new TokenBucketRateLimiter(bytesPerSecond) : null,
                    new WarningWriter(error));
                var result = await uploader.UploadAsync(path, description, cancellationToken: cancellationToken).ConfigureAwait(false);
                output.WriteLine($"sha256: {result.Ack.Sha256}");
                output.WriteLine($"stored_bytes: {result.Ack.StoredBytes}");
                output.WriteLine($"duplicate: {(result.Ack.Duplicate ? "true" : "false")}");
                output.WriteLine($"sent: {result.BytesSent} bytes from offset {result.ResumedFrom} in {result.Attempts} attempt(s)");
                return 0;
            }
            catch (CaptureUploadException e)
            {
                return Fail(error, e.Message + (e.IsTransient ? " (transient: try again later)" : ""), e.IsTransient ? ExitCodes.Unavailable : ExitCodes.Failed);
            }
            catch (Exception e) when (e is InvalidOperationException or CryptographicException)
            {
                return Fail(error, e.Message, ExitCodes.Failed);
            }
        });
        return command;
    }

    /// <summary>The manifest file given; a file that is not a manifest is named in the error.</summary>
    private static UploadManifest GivenManifest(string capture, string manifestPath)
    {
        try
        {
            return UploadManifest.Given(capture, File.ReadAllText(manifestPath));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidDataException or ArgumentException)
        {
            throw new CliException(ExitCodes.Usage, $"--manifest {manifestPath} is not a capture manifest (docs/protocol.md): {e.Message}");
        }
    }

    /// <summary>One line on stderr; by default the status of a mistake in the command line.</summary>
    private static int Fail(TextWriter error, string message, int status = ExitCodes.Usage)
    {
        error.WriteLine("survey6 probe upload: " + message);
        return status;
    }

    /// <summary>Shows the uploader's retries on stderr, so an operator sees why a command takes its time.</summary>
    private sealed class WarningWriter(TextWriter error) : ILogger<CaptureUploader>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
                error.WriteLine("survey6 probe upload: " + formatter(state, exception));
        }
    }
}
