using System.Diagnostics;

namespace Survey6.Packets.Tests.Capture;

/// <summary>Result of running a Wireshark command-line tool.</summary>
internal sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Fails unless the tool exited 0 and printed nothing on stderr (any warning means a problem with the file).</summary>
    public ToolResult AssertClean()
    {
        Assert.True(ExitCode == 0, $"{Command} exited {ExitCode}.\nstderr:\n{Stderr}\nstdout:\n{Stdout}");
        Assert.True(Stderr.Length == 0, $"{Command} wrote to stderr:\n{Stderr}");
        return this;
    }
}

/// <summary>
/// Runs tshark / capinfos. A missing tool fails the test instead of skipping it: CI installs them and a
/// silently skipped interop test would prove nothing.
/// </summary>
internal static class ExternalTool
{
    // tshark prints this on every start when run as root (CI containers); it says nothing about the file.
    private const string RootNotice = "Running as user \"root\" and group \"root\". This could be dangerous.";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static ToolResult Run(string tool, params string[] arguments)
    {
        var path = Locate(tool);
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        // Stable, untranslated output whatever the machine's locale.
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["LANG"] = "C";

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {path}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{tool} did not finish within {Timeout}.");
        }

        process.WaitForExit();
        var command = tool + " " + string.Join(' ', arguments);
        return new ToolResult(command, process.ExitCode, stdout.Result, StripRootNotice(stderr.Result));
    }

    private static string StripRootNotice(string stderr)
    {
        var lines = stderr.Split('\n').Where(l => l.TrimEnd('\r') != RootNotice && l.Length > 0);
        return string.Join('\n', lines);
    }

    private static string Locate(string tool)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate))
            {
                return candidate;
            }

            if (OperatingSystem.IsWindows() && File.Exists(candidate + ".exe"))
            {
                return candidate + ".exe";
            }
        }

        Assert.Fail($"'{tool}' is not on PATH. The pcapng interop tests need Wireshark's command-line tools: "
            + "install them (Debian/Ubuntu: apt-get install tshark) and run the tests again.");
        return tool;
    }
}
