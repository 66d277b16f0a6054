using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Memory;

namespace Survey6.Contracts.Configuration;

/// <summary>
/// Where a survey6 program (probe, server, aggregator) reads its settings from, and in which order: the one precedence
/// that docs/operations.md ("Where settings come from") documents. Lowest first:
/// <list type="number">
/// <item>built-in defaults (<see cref="Defaults"/>);</item>
/// <item>the system file, <c>/etc/survey6/PROGRAM.json</c>, when there is one (the packages install probe.json and server.json there);</item>
/// <item>the file named by <c>--config</c> (<see cref="ConfigFile"/>);</item>
/// <item>environment variables, <c>Section__Key</c> (<c>Probe__Capture__Interfaces__0=eth0</c>, <c>Server__GrpcListen=...</c>);</item>
/// <item>command-line options (<see cref="Overrides"/>, as <c>Section:Key</c>).</item>
/// </list>
/// A file that is named but missing (<see cref="FileNotFoundException"/>), or present but not a JSON object
/// (<see cref="FormatException"/>), stops the program at start with a message that names the file (and the line). Contracts owns this because the probe, the server and the aggregator all reference it
/// and must agree; the programs differ only in their name and defaults.
/// </summary>
public sealed record ConfigurationLayers
{
    /// <summary>The folder of the system files; the Debian packages install their conffiles here.</summary>
    public const string SystemDirectory = "/etc/survey6";

    private static readonly JsonDocumentOptions JsonOptions = new()
    {
        // As Microsoft.Extensions.Configuration.Json reads it, so that what passes here loads there.
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <param name="program">The program's name (<c>probe</c>, <c>server</c>, <c>aggregator</c>), which names its system file.</param>
    public ConfigurationLayers(string program)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(program);
        Program = program;
        SystemFile = Path.Combine(SystemDirectory, program + ".json");
    }

    public string Program { get; }

    /// <summary>
    /// The defaults every program shares: information and up, without the host's start-up chatter (the programs print
    /// what matters, such as their addresses, themselves).
    /// </summary>
    public static IReadOnlyDictionary<string, string?> CommonDefaults { get; } = new Dictionary<string, string?>
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = "Warning",
    };

    /// <summary>The program's own built-in defaults, over <see cref="CommonDefaults"/> and beneath everything else.</summary>
    public IReadOnlyDictionary<string, string?> Defaults { get; init; } = new Dictionary<string, string?>();

    /// <summary>Read when it exists (<c>/etc/survey6/PROGRAM.json</c> unless set); null for none.</summary>
    public string? SystemFile { get; init; }

    /// <summary>The file <c>--config</c> named, if any: it must exist.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>Settings from the command line, above everything else.</summary>
    public IReadOnlyDictionary<string, string?>? Overrides { get; init; }

    /// <summary>The layers alone, for commands that need a setting without starting the program.</summary>
    public IConfigurationRoot Build() => AddTo(new ConfigurationBuilder()).Build();

    /// <summary>
    /// Puts the layers into <paramref name="builder"/>: defaults beneath what it has, the files, environment variables
    /// and overrides above. A host builder's own environment-variable source is moved above the files, so that every
    /// program has the same order whether it runs as a host or only reads its settings.
    /// </summary>
    public IConfigurationBuilder AddTo(IConfigurationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        for (var i = builder.Sources.Count - 1; i >= 0; i--)
        {
            if (builder.Sources[i] is EnvironmentVariablesConfigurationSource { Prefix: null or "" })
                builder.Sources.RemoveAt(i);
        }

        var defaults = new Dictionary<string, string?>(CommonDefaults, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in Defaults)
            defaults[key] = value;
        builder.Sources.Insert(0, new MemoryConfigurationSource { InitialData = defaults });
        var configFile = ConfigFile is null ? null : Path.GetFullPath(ConfigFile);
        if (SystemFile is not null && File.Exists(SystemFile) && !string.Equals(Path.GetFullPath(SystemFile), configFile, StringComparison.Ordinal))
            AddJson(builder, Path.GetFullPath(SystemFile));
        if (configFile is not null)
            AddJson(builder, configFile);
        builder.AddEnvironmentVariables();
        if (Overrides is not null)
            builder.AddInMemoryCollection(Overrides);
        return builder;
    }

    private static void AddJson(IConfigurationBuilder builder, string path)
    {
        Check(path);
        builder.AddJsonFile(path, optional: false, reloadOnChange: false);
    }

    /// <summary>
    /// Reads <paramref name="path"/> as the JSON provider will, so that a mistake is reported with the file and the
    /// line rather than as the provider's "Failed to load configuration from file".
    /// </summary>
    public static void Check(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new FormatException($"configuration file {path} is a directory; it names a JSON file");
        if (!File.Exists(path))
            throw new FileNotFoundException($"configuration file {path} does not exist", path);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path), JsonOptions);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new FormatException($"configuration file {path} holds a JSON {document.RootElement.ValueKind.ToString().ToLowerInvariant()}, not an object of sections ({{ \"Section\": {{ ... }} }})");
        }
        catch (JsonException e)
        {
            throw new FormatException(NotJson(path, e), e);
        }
    }

    /// <summary>The file, then where the reader stopped (from 1), then why.</summary>
    private static string NotJson(string path, JsonException error)
    {
        // System.Text.Json appends its own zero-based position ("LineNumber: 2 | BytePositionInLine: 4."); say it once, from 1.
        var reason = error.Message;
        var tail = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (tail > 0)
            reason = reason[..tail];
        var where = error.LineNumber is { } line ? $" at line {line + 1}, column {error.BytePositionInLine.GetValueOrDefault() + 1}" : "";
        return $"configuration file {path} is not valid JSON{where}: {reason.TrimEnd('.', ' ')}";
    }
}
