using System.Diagnostics;

namespace Survey6.Deploy.Tests;

/// <summary>What a command printed and returned.</summary>
internal sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + Stderr;

    public ToolResult Check()
    {
        Assert.True(ExitCode == 0, $"{Command} exited {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        return this;
    }
}

/// <summary>Runs system tools (dpkg-deb, apt-get, systemd-analyze, the packaged survey6). A missing tool fails the test.</summary>
internal static class Tool
{
    public static ToolResult Run(string tool, params string[] arguments) => Run(TimeSpan.FromMinutes(2), null, tool, arguments);

    public static ToolResult Run(TimeSpan timeout, string? workingDirectory, string tool, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool)
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
        return new ToolResult(tool + " " + string.Join(' ', arguments), process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>apt-get waiting for the dpkg lock other installs may hold.</summary>
    public static ToolResult AptGet(params string[] arguments) =>
        Run(TimeSpan.FromMinutes(12), null, "apt-get", ["-o", "DPkg::Lock::Timeout=600", "-y", .. arguments]);
}
