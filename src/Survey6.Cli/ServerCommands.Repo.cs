using System.CommandLine;
using System.Net;
using System.Text.Json;
using Survey6.Server.Hosting;
using Survey6.Server.Options;
using Survey6.Server.Repository;

namespace Survey6.Cli;

public static partial class ServerCommands
{
    /// <summary>
    /// <c>survey6 server repo add|list|key|source</c>: the signed apt repository the server serves at
    /// <c>/apt/</c>. Works on the data directory directly; a running server serves the new index at once.
    /// </summary>
    private static Command CreateRepo(Option<string> dataDir, Option<string> config)
    {
        var group = new Command("repo", "The signed apt repository served at /apt/ on the HTTP endpoint (probe hosts install survey6-probe from it)");

        var file = new Argument<string>("FILE.deb") { Description = "A Debian package, e.g. from deploy/debian/build" };
        var add = new Command("add", "Copy a package into the repository and rebuild the signed index (the signing key is made on first use)") { file };
        add.SetAction(parse =>
        {
            // Opened with the caller's rights before the command becomes the repository's owner (DirectoryOwner):
            // `sudo survey6 server repo add ./x.deb` may name a file only root can read.
            using var input = PackageInput.Open(parse.GetValue(file)!);
            return Repo(parse, "repo add", dataDir, config, repository =>
            {
                var package = repository.Add(input.ReadablePath());
                parse.InvocationConfiguration.Output.WriteLine($"serving {package.Name} {package.Version} ({package.Architecture}) as {AptRepository.UrlPrefix}/{package.Filename}");
            });
        });
        group.Subcommands.Add(add);

        var json = new Option<bool>("--json") { Description = "JSON, as GET /api/v1/repo answers" };
        var list = new Command("list", "The packages served, oldest version first") { json };
        list.SetAction(parse => Repo(parse, "repo list", dataDir, config, repository =>
        {
            var output = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(AptRepositoryHosting.Describe(repository), AptRepositoryJsonContext.Default.AptRepositoryDto));
                return;
            }

            var rows = repository.List().OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Version, DebianVersion.Comparer)
                .Select(p => new[] { p.Name, p.Version, p.Architecture, p.Size.ToString(System.Globalization.CultureInfo.InvariantCulture), p.Filename });
            WriteTable(output, ["PACKAGE", "VERSION", "ARCH", "SIZE", "FILE"], rows);
        }));
        group.Subcommands.Add(list);

        var key = new Command("key", "Print the repository's public signing key (ASCII-armoured; made on first use)");
        key.SetAction(parse => Repo(parse, "repo key", dataDir, config, repository => parse.InvocationConfiguration.Output.Write(repository.PublicKey())));
        group.Subcommands.Add(key);

        var url = new Option<string>("--url") { Description = "The server's HTTP URL as probe hosts reach it (default: from Server:AdvertisedHost and Server:HttpListen)" };
        var keyPath = new Option<string>("--key-path") { Description = "Where the probe host keeps the key", DefaultValueFactory = _ => "/etc/apt/keyrings/survey6.asc" };
        var source = new Command("source", "Print the one-line apt source a probe host adds (with the key from `repo key`)") { url, keyPath };
        source.SetAction(parse => Repo(parse, "repo source", dataDir, config, _ =>
        {
            var text = parse.GetValue(url) ?? DefaultHttpUrl(LoadOptions(parse, dataDir, config));
            if (!Uri.TryCreate(text, UriKind.Absolute, out var baseUrl) || (baseUrl.Scheme != Uri.UriSchemeHttp && baseUrl.Scheme != Uri.UriSchemeHttps))
                throw new AptRepositoryException($"'{text}' is not an http(s) URL; pass --url http://HOST:PORT");
            parse.InvocationConfiguration.Output.WriteLine(AptRepository.SourceLine(baseUrl, parse.GetValue(keyPath)!));
        }));
        group.Subcommands.Add(source);
        return group;
    }

    /// <summary>
    /// A package file given on the command line, held open from before a switch of user; if the user the command
    /// runs as now cannot read it, a private copy (same file name, in a temporary directory) stands in for it.
    /// </summary>
    private sealed class PackageInput : IDisposable
    {
        private readonly string _path;
        private readonly FileStream? _stream;
        private string? _copyDirectory;

        private PackageInput(string path, FileStream? stream)
        {
            _path = path;
            _stream = stream;
        }

        public static PackageInput Open(string path)
        {
            try
            {
                return new PackageInput(path, File.OpenRead(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return new PackageInput(path, null); // missing or unreadable: AptRepository.Add says which
            }
        }

        public string ReadablePath()
        {
            if (_stream is null || CanRead(_path))
                return _path;
            _copyDirectory = Directory.CreateTempSubdirectory("survey6-repo-add-").FullName;
            var copy = Path.Combine(_copyDirectory, Path.GetFileName(_path));
            using (var target = File.Create(copy))
                _stream.CopyTo(target);
            return copy;
        }

        public void Dispose()
        {
            _stream?.Dispose();
            if (_copyDirectory is not null)
                Directory.Delete(_copyDirectory, recursive: true);
        }

        private static bool CanRead(string path)
        {
            try
            {
                using var _ = File.OpenRead(path);
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }
    }

    private static int Repo(ParseResult parse, string command, Option<string> dataDir, Option<string> config, Action<AptRepository> action)
    {
        try
        {
            action(new AptRepository(LoadOptions(parse, dataDir, config).DataDirectory));
            return 0;
        }
        catch (Exception e) when (e is AptRepositoryException or IOException or UnauthorizedAccessException)
        {
            return Fail(parse, command, e.Message);
        }
    }

    private static string DefaultHttpUrl(ServerOptions options)
    {
        if (!ListenAddress.TryParse(options.HttpListen, out var listen) || listen.Port == 0)
            throw new AptRepositoryException("Server:HttpListen has no fixed port; pass --url http://HOST:PORT");
        var host = !string.IsNullOrWhiteSpace(options.AdvertisedHost) ? options.AdvertisedHost.Trim()
            : listen.Address is { } address && !IPAddress.IsLoopback(address) && !address.Equals(IPAddress.Any) && !address.Equals(IPAddress.IPv6Any) ? address.ToString()
            : Dns.GetHostName();
        if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6)
            host = "[" + ip + "]";
        return $"http://{host}:{listen.Port}";
    }
}
