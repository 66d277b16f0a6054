using Microsoft.Extensions.Options;

namespace Survey6.Probe.Policies;

/// <summary>
/// When a policy from the server counts as proven, and when a probe that keeps dying after a policy change falls
/// back to its last known-good policy; section <c>Probe:Policy</c>.
/// </summary>
public sealed class ProbePolicyOptions
{
    public const string SectionName = "Probe:Policy";

    /// <summary>Starts that died before <see cref="HealthyAfter"/> within <see cref="CrashLoopWindow"/> that trigger the fall back.</summary>
    public int CrashLoopStarts { get; set; } = 3;

    public TimeSpan CrashLoopWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Running this long without a failure (capturing or suspended) makes the policy in force the last known-good one.</summary>
    public TimeSpan HealthyAfter { get; set; } = TimeSpan.FromMinutes(2);
}

internal sealed class ProbePolicyOptionsValidator : IValidateOptions<ProbePolicyOptions>
{
    public ValidateOptionsResult Validate(string? name, ProbePolicyOptions options)
    {
        var errors = new List<string>();
        if (options.CrashLoopStarts is < 1 or > 100)
            errors.Add("Probe:Policy:CrashLoopStarts must be 1..100");
        if (options.CrashLoopWindow < TimeSpan.FromSeconds(10) || options.CrashLoopWindow > TimeSpan.FromDays(1))
            errors.Add("Probe:Policy:CrashLoopWindow must be 10 s..1 day");
        if (options.HealthyAfter < TimeSpan.FromSeconds(1) || options.HealthyAfter > TimeSpan.FromHours(6))
            errors.Add("Probe:Policy:HealthyAfter must be 1 s..6 h");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
