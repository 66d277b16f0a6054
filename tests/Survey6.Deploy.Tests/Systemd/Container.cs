using System.Diagnostics;
using System.Globalization;
using System.Text;
using Survey6.Deploy.Tests.Support;

namespace Survey6.Deploy.Tests.Systemd;

/// <summary>
/// A Debian container booted by systemd-nspawn with systemd as PID 1, in a network namespace the test made, on an
/// overlay of the cached root filesystem (the cache stays clean). The host has no systemd, hence
/// <c>--register=no --keep-unit</c>. Commands run inside through <c>nsenter</c> into all of the container's
/// namespaces; the host reads the container's files under <see cref="Root"/>.
/// </summary>
internal sealed class Container : IDisposable
{
    private static readonly string[] Environment =
        ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive"];

    private readonly Lab _lab;
    private readonly string _namespace;
    private readonly string[] _binds;
    private readonly StringBuilder _console = new();
    private BackgroundProcess? _nspawn;

    public Container(Lab lab, string rootfs, string name, string networkNamespace, params string[] bindReadOnly)
    {
        _lab = lab;
        Name = name;
        _namespace = networkNamespace;
        _binds = bindReadOnly;
        var dir = Path.Combine(lab.Directory, name);
        Root = Path.Combine(dir, "root");
        foreach (var sub in new[] { "upper", "work", "root" })
            System.IO.Directory.CreateDirectory(Path.Combine(dir, sub));
        Tool.Run("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={rootfs},upperdir={dir}/upper,workdir={dir}/work", Root).Check();
        lab.Record("mount", Root);
    }

    /// <summary>The machine name, also the container's host name.</summary>
    public string Name { get; }

    /// <summary>The container's / as the host sees it.</summary>
    public string Root { get; }

    /// <summary>The container's PID 1 (systemd), as a host pid.</summary>
    public int Leader { get; private set; }

    /// <summary>What the container printed on its console, every boot.</summary>
    public string Console
    {
        get
        {
            lock (_console)
                return _console.ToString() + (_nspawn?.Output ?? "");
        }
    }

    /// <summary>Starts systemd-nspawn and waits until systemd finished booting (multi-user.target).</summary>
    public async Task BootAsync()
    {
        string[] arguments =
        [
            "--quiet", "--directory=" + Root, "--machine=" + Name, "--boot", "--register=no", "--keep-unit", "--console=read-only",
            "--network-namespace-path=/run/netns/" + _namespace, .. _binds.Select(b => "--bind-ro=" + b),
            // nspawn keeps CAP_NET_ADMIN out of a container's bounding set unless it has a network of its own, which
            // it does not count a given namespace as; a real host has it (the probe's unit asks for it).
            "--capability=CAP_NET_ADMIN",
        ];
        _nspawn = BackgroundProcess.Start("systemd-nspawn", arguments);
        _lab.Record("nspawn", _nspawn.Id.ToString(CultureInfo.InvariantCulture));
        var deadline = Stopwatch.StartNew();
        Leader = 0;
        while (Leader == 0)
        {
            Assert.False(_nspawn.HasExited, $"systemd-nspawn {Name} exited:\n{Console}");
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(2), $"{Name}: no systemd under systemd-nspawn after {deadline.Elapsed}:\n{Console}");
            Leader = ChildrenOf(_nspawn.Id).FirstOrDefault(p => Comm(p) == "systemd");
            if (Leader == 0)
                await Task.Delay(100);
        }

        while (true)
        {
            // --wait blocks until start-up finished; "degraded" means a unit failed, which the tests look at themselves.
            var state = Exec(TimeSpan.FromMinutes(3), "systemctl", "is-system-running", "--wait");
            if (state.Stdout.Trim() is "running" or "degraded")
                return;
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(3), $"{Name} did not finish booting: {state.Output}\n{Console}");
            await Task.Delay(200);
        }
    }

    /// <summary>Runs a command in the container as root, with a plain environment; waits up to <paramref name="timeout"/>.</summary>
    public ToolResult Exec(TimeSpan timeout, params string[] command) =>
        Tool.Run(timeout, "nsenter", ["--target", Leader.ToString(CultureInfo.InvariantCulture), "--all", "--", "env", "-i", .. Environment, .. command]);

    public ToolResult Exec(params string[] command) => Exec(TimeSpan.FromMinutes(2), command);

    /// <summary>A shell command line, as a person types it at the container's root prompt.</summary>
    public ToolResult Shell(string script, TimeSpan? timeout = null) => Exec(timeout ?? TimeSpan.FromMinutes(2), "sh", "-c", script);

    /// <summary>Starts a command in the container in the background.</summary>
    public BackgroundProcess Start(params string[] command) =>
        BackgroundProcess.Start("nsenter", ["--target", Leader.ToString(CultureInfo.InvariantCulture), "--all", "--", "env", "-i", .. Environment, .. command]);

    /// <summary><c>systemctl reboot</c> inside: systemd shuts down, nspawn exits (133, "reboot"), and the test boots it again, as systemd-nspawn@.service would.</summary>
    public async Task RebootAsync()
    {
        Exec("systemctl", "reboot"); // the connection may drop before it answers
        await WaitForExitAsync(TimeSpan.FromMinutes(3));
        await BootAsync();
    }

    /// <summary>Powers the container off (SIGTERM to nspawn is a clean shutdown); kills it if that takes too long.</summary>
    public void Dispose()
    {
        if (_nspawn is { HasExited: false } nspawn)
        {
            Tool.Run("kill", "-TERM", nspawn.Id.ToString(CultureInfo.InvariantCulture));
            var deadline = Stopwatch.StartNew();
            while (!nspawn.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(90))
                Thread.Sleep(100);
        }

        KeepConsole();
        _nspawn?.Dispose(); // kills it (and the container with it) if it is still there
        _nspawn = null;
        Mounts.UnmountUnder(Root);
    }

    /// <summary>The pids whose parent is <paramref name="pid"/>.</summary>
    internal static IEnumerable<int> ChildrenOf(int pid)
    {
        var children = new List<int>();
        foreach (var dir in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var candidate))
                continue;
            try
            {
                // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so read after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], CultureInfo.InvariantCulture) == pid)
                    children.Add(candidate);
            }
            catch (IOException)
            {
                // exited meanwhile
            }
        }

        return children;
    }

    private static string Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }

    private async Task WaitForExitAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (!_nspawn!.HasExited)
        {
            Assert.True(deadline.Elapsed < timeout, $"{Name} did not shut down within {timeout}:\n{Console}");
            await Task.Delay(100);
        }

        KeepConsole();
        _nspawn.Dispose();
        _nspawn = null;
    }

    private void KeepConsole()
    {
        if (_nspawn is null)
            return;
        lock (_console)
            _console.Append(_nspawn.Output);
    }
}
