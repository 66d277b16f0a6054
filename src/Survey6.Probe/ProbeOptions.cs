using System.Globalization;
using Microsoft.Extensions.Options;
using Survey6.Contracts;
using Survey6.Packets.Capture;
using Survey6.Probe.Join;

namespace Survey6.Probe;

/// <summary>Who the probe is and where it keeps its state; section <c>Probe</c>.</summary>
public sealed class ProbeOptions
{
    public const string SectionName = "Probe";

    /// <summary>Key, certificates, probe.json (from <c>survey6 probe join</c>), the suspended flag, the control socket, the spool.</summary>
    public string StateDirectory { get; set; } = JoinSettings.DefaultStateDirectory;

    /// <summary>Probe id written into files when the state directory holds no join; the joined id always wins.</summary>
    public string Id { get; set; } = "";

    /// <summary>Operator labels written into every file (<c>survey6.labels</c>) and manifest.</summary>
    public Dictionary<string, string> Labels { get; set; } = new(StringComparer.Ordinal);

    /// <summary><c>lat,lon[,country[,city]]</c>; empty when unknown.</summary>
    public string Location { get; set; } = "";

    /// <summary>
    /// For tests only: added to the wall clock the probe reports (heartbeats, file names, manifests) so that the
    /// server's clock-skew check can be exercised without touching the host's clock. Zero in production.
    /// </summary>
    public TimeSpan ClockOffset { get; set; }

    /// <summary>The location as survey6 metadata writes it (<c>lat,lon,country,city</c>), or null.</summary>
    internal static string? FormatLocation(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
            return null;
        var parts = text.Split(',', 4, StringSplitOptions.TrimEntries);
        if (parts.Length < 2
            || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var latitude) || latitude is < -90 or > 90
            || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var longitude) || longitude is < -180 or > 180)
            throw new FormatException($"'{text}' is not lat,lon[,country[,city]]");
        return PcapngMetadata.FormatLocation(latitude, longitude, parts.Length > 2 ? parts[2] : null, parts.Length > 3 ? parts[3] : null);
    }
}

internal sealed class ProbeOptionsValidator : IValidateOptions<ProbeOptions>
{
    public ValidateOptionsResult Validate(string? name, ProbeOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.StateDirectory))
            errors.Add("Probe:StateDirectory must be set");
        try
        {
            if (ProbeLabels.Check(options.Labels) is { } labelProblem)
                errors.Add("Probe:Labels: " + labelProblem);
            else
                PcapngMetadata.FormatLabels(options.Labels); // the capture files' k=v;k=v form: no ';' in values either
        }
        catch (ArgumentException e)
        {
            errors.Add("Probe:Labels: " + e.Message);
        }

        try
        {
            ProbeOptions.FormatLocation(options.Location);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            errors.Add("Probe:Location: " + e.Message);
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
