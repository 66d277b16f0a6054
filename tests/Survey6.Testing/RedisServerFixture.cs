using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using StackExchange.Redis;

namespace Survey6.Testing;

/// <summary>
/// A private redis-server on a free loopback port, without persistence, for the whole test run.
/// A missing redis-server fails the tests (they are never skipped): CI must install it.
/// </summary>
public sealed class RedisServerFixture : IDisposable
{
    /// <summary>The xUnit collection sharing one server; each test project declares it (xUnit finds collection definitions only in the test assembly).</summary>
    public const string CollectionName = "redis-server";

    private readonly Process _process;
    private readonly string _dir;
    private readonly StringBuilder _log = new();

    public RedisServerFixture()
    {
        var server = FindRedisServer() ?? throw new InvalidOperationException(
            "redis-server was not found on PATH. The Redis ingest queue tests start their own server: " +
            "install the Debian package redis-server (apt-get install redis-server).");
        _dir = Directory.CreateTempSubdirectory("survey6-redis-").FullName;

        // A port can be taken between picking and binding it; try a few.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreeLoopbackPort();
            _process = StartServer(server, Port);
            var connection = WaitUntilUp(_process, Port);
            if (connection is not null)
            {
                Connection = connection;
                return;
            }
            StopProcess(_process);
            if (attempt == 3)
            {
                throw new InvalidOperationException($"redis-server did not start on 127.0.0.1. Its log:\n{Log}");
            }
        }
    }

    public int Port { get; }

    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary>Shared by the tests; each test uses its own stream name.</summary>
    public ConnectionMultiplexer Connection { get; }

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public void Dispose()
    {
        Connection.Dispose();
        StopProcess(_process);
        _process.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is not worth failing the run for.
        }
    }

    private Process StartServer(string server, int port)
    {
        var start = new ProcessStartInfo(server)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[]
                 {
                     "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--bind", "127.0.0.1",
                     "--save", "",
                     "--appendonly", "no",
                     "--dir", _dir,
                     "--daemonize", "no",
                     "--loglevel", "warning",
                 })
        {
            start.ArgumentList.Add(arg);
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start redis-server");
        DataReceivedEventHandler append = (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_log)
                {
                    _log.AppendLine(e.Data);
                }
            }
        };
        process.OutputDataReceived += append;
        process.ErrorDataReceived += append;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static ConnectionMultiplexer? WaitUntilUp(Process process, int port)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(15))
        {
            if (process.HasExited)
            {
                return null;
            }
            try
            {
                var connection = ConnectionMultiplexer.Connect($"127.0.0.1:{port},connectTimeout=1000,abortConnect=true");
                connection.GetDatabase().Ping();
                return connection;
            }
            catch (RedisConnectionException)
            {
                Thread.Sleep(50);
            }
        }
        return null;
    }

    private static void StopProcess(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }
        process.WaitForExit();
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string? FindRedisServer()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        // sbin folders too: some PATHs for non-root users lack them.
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"])
            .Select(dir => Path.Combine(dir, "redis-server"))
            .FirstOrDefault(File.Exists);
    }
}
