using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Survey6.Aggregator.Tests.Support;

/// <summary>
/// A private PostgreSQL server from Debian's <c>postgresql</c> package for the tests of a class: a new cluster
/// (<c>initdb</c>) in a temp folder, started with <c>pg_ctl</c> on a free loopback port with its Unix socket in that
/// folder, stopped and removed afterwards. PostgreSQL refuses to run as root, so as root the cluster belongs to the
/// package's <c>postgres</c> user. A missing package fails the tests (they are never skipped): CI installs it.
/// </summary>
public sealed class PostgresServerFixture : IDisposable
{
    private readonly string _bin;
    private readonly string _data;
    private readonly string? _runAs;

    public PostgresServerFixture()
    {
        _bin = FindBin() ?? throw new InvalidOperationException(
            "PostgreSQL's initdb was not found under /usr/lib/postgresql/*/bin. The ledger's PostgreSQL tests start their own " +
            "server: install the Debian package postgresql (.ci/run does).");
        Root = Directory.CreateTempSubdirectory("survey6-pg-").FullName;
        _data = Path.Combine(Root, "data");
        _runAs = Environment.UserName == "root" ? "postgres" : null;
        if (_runAs is not null)
            Run("chown", ["-R", _runAs + ":", Root], asServer: false);
        Run(Path.Combine(_bin, "initdb"), ["-D", _data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], asServer: true);

        // A port can be taken between picking and binding it; try a few.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreeLoopbackPort();
            var options = $"-p {Port} -k {Root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100";
            var (status, output) = Run(Path.Combine(_bin, "pg_ctl"), ["-D", _data, "-l", Path.Combine(Root, "server.log"), "-o", options, "-w", "-t", "120", "start"], asServer: true, check: false);
            if (status == 0)
                break;
            if (attempt == 3)
                throw new InvalidOperationException($"PostgreSQL did not start: {output}\n{Log}");
        }
    }

    /// <summary>The cluster's folder; the server's Unix socket is in it.</summary>
    public string Root { get; }

    public int Port { get; }

    public string Log => File.Exists(Path.Combine(Root, "server.log")) ? File.ReadAllText(Path.Combine(Root, "server.log")) : "";

    /// <summary>A connection string for <paramref name="database"/> over the Unix socket, as the superuser.</summary>
    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = Root, Port = Port, Username = "postgres", Database = database, Pooling = false }.ConnectionString;

    /// <summary>A new, empty database; returns its connection string.</summary>
    public string CreateDatabase()
    {
        var name = "survey6_" + Guid.NewGuid().ToString("N")[..12];
        using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        connection.Open();
        using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        command.ExecuteNonQuery();
        return ConnectionString(name);
    }

    public void Dispose()
    {
        Run(Path.Combine(_bin, "pg_ctl"), ["-D", _data, "-m", "immediate", "-w", "-t", "60", "stop"], asServer: true, check: false);
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is not worth failing the run for.
        }
    }

    private (int Status, string Output) Run(string program, IEnumerable<string> arguments, bool asServer, bool check = true)
    {
        var start = new ProcessStartInfo(asServer && _runAs is not null ? "runuser" : program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Root ?? Path.GetTempPath(),
        };
        if (asServer && _runAs is not null)
        {
            foreach (var a in new[] { "-u", _runAs, "--", program })
                start.ArgumentList.Add(a);
        }
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + program);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{program} did not finish in 3 minutes");
        }
        var output = stdout.Result + stderr.Result;
        if (check && process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode.ToString(CultureInfo.InvariantCulture)}): {output}");
        return (process.ExitCode, output);
    }

    private static string? FindBin() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.EnumerateDirectories("/usr/lib/postgresql")
                .Select(v => Path.Combine(v, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "initdb")))
                .OrderByDescending(b => int.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out var n) ? n : 0)
                .FirstOrDefault()
            : null;

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
