using System.Diagnostics;

using Survey6.Testbed;

namespace Survey6.Testing;

/// <summary>What a command printed and returned.</summary>
public sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;

    public ToolResult Check()
    {
        Assert.True(ExitCode == 0, $"{Command} exited {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        return this;
    }

    /// <summary>Fails unless the tool exited 0 and printed nothing on stderr (from tshark or capinfos, any warning means a problem with the file).</summary>
    public ToolResult AssertClean()
    {
        Check();
        Assert.True(Stderr.Length == 0, $"{Command} wrote to stderr:\n{Stderr}");
        return this;
    }
}

/// <summary>
/// Runs system tools (ip, ping, tshark, mount, systemd-analyze, dpkg-deb, apt-get...) for the tests
/// of every test project. A missing tool fails the test: CI installs them (test.sh),
/// and a skipped test would prove nothing.
/// </summary>
public static class Tool
{
    // tshark says this on every start as root; it is about the process, not the file.
    private const string RootNotice = "Running as user \"root\" and group \"root\". This could be dangerous.";

    public static ToolResult Run(string tool, params string[] arguments) => Run(TimeSpan.FromMinutes(2), tool, arguments);

    public static ToolResult Run(TimeSpan timeout, string tool, params string[] arguments) => RunIn(timeout, null, tool, arguments);

    /// <summary>Runs <paramref name="tool"/> in <paramref name="workingDirectory"/> (null: this process's), stdin closed.</summary>
    public static ToolResult RunIn(TimeSpan timeout, string? workingDirectory, string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(Locate(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        start.Environment["LC_ALL"] = "C";
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {tool}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{tool} {string.Join(' ', arguments)} did not finish within {timeout}");
        }

        process.WaitForExit();
        var errors = string.Join('\n', stderr.Result.Split('\n').Where(l => l.Length > 0 && l.TrimEnd('\r') != RootNotice));
        return new ToolResult(tool + " " + string.Join(' ', arguments), process.ExitCode, stdout.Result, errors);
    }

    public static string Locate(string tool)
    {
        if (tool.Contains('/', StringComparison.Ordinal))
            return tool;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") + ":/usr/sbin:/sbin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
                return candidate;
        }

        Assert.Fail($"'{tool}' is not installed; test.sh installs what the tests need");
        return tool;
    }

    /// <summary>The dotnet muxer running the tests, for child processes.</summary>
    public static string Dotnet() => DotnetHost.Path;

    public static void RequireRoot()
    {
        Assert.True(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root" || GetEuid() == 0,
            "the probe tests create network namespaces and capture packets: run them as root (CI does)");
    }

    private static uint GetEuid()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("Uid:", StringComparison.Ordinal))
                    return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch (IOException)
        {
        }

        return uint.MaxValue;
    }

    /// <summary>apt-get waiting for the dpkg lock other installs may hold.</summary>
    public static ToolResult AptGet(params string[] arguments) =>
        Run(TimeSpan.FromMinutes(12), "apt-get", ["-o", "DPkg::Lock::Timeout=600", "-y", .. arguments]);
}
