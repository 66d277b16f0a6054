using System.Globalization;

namespace Survey6.LoadGen;

/// <summary>Command line of survey6-loadgen.</summary>
internal sealed class LoadOptions
{
    public const string Usage = """
        survey6-loadgen [--probes N] [--interval 10s] [--duration 60s] [--join-parallel N] [--connect-parallel N]
                        [--server URL --token TOKEN --ca-hash PIN] [--survey6 PATH] [--work DIR] [--keep]

        Without --server it starts `survey6 server run` on a temporary data directory (gRPC on
        127.0.0.1:0), creates a join token with N uses and joins N probes through the real join path.
        With --server it joins N probes to that server with --token (which needs N uses) and --ca-hash.
        Durations take a unit: ms, s, m.
        """;

    public int Probes { get; private set; } = 1000;
    public TimeSpan Interval { get; private set; } = TimeSpan.FromSeconds(10);
    public TimeSpan Duration { get; private set; } = TimeSpan.FromSeconds(60);
    public int JoinParallel { get; private set; } = 16;
    public int ConnectParallel { get; private set; } = 64;
    public Uri? Server { get; private set; }
    public string? Token { get; private set; }
    public string? CaPin { get; private set; }
    public string? Survey6 { get; private set; }
    public string? WorkDirectory { get; private set; }
    public bool Keep { get; private set; }

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--probes": options.Probes = PositiveInt(Value()); break;
                case "--interval": options.Interval = ParseDuration(Value()); break;
                case "--duration": options.Duration = ParseDuration(Value()); break;
                case "--join-parallel": options.JoinParallel = PositiveInt(Value()); break;
                case "--connect-parallel": options.ConnectParallel = PositiveInt(Value()); break;
                case "--server": options.Server = new Uri(Value()); break;
                case "--token": options.Token = Value(); break;
                case "--ca-hash": options.CaPin = Value(); break;
                case "--survey6": options.Survey6 = Value(); break;
                case "--work": options.WorkDirectory = Value(); break;
                case "--keep": options.Keep = true; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }

        if (options.Server is not null && (options.Token is null || options.CaPin is null))
            throw new ArgumentException("--server needs --token and --ca-hash");
        return options;
    }

    private static int PositiveInt(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"not a positive integer: {text}");

    internal static TimeSpan ParseDuration(string text)
    {
        var (number, scale) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1.0),
            _ when text.EndsWith('m') => (text[..^1], 60.0),
            _ => (text, 1.0),
        };
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0
            ? TimeSpan.FromSeconds(value * scale)
            : throw new ArgumentException($"not a duration: {text}");
    }
}
