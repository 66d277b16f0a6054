using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Contracts.Configuration;
using Survey6.Probe.Capture;
using Survey6.Probe.Join;
using Survey6.Probe.Policies;
using Survey6.Probe.Spool;
using Survey6.Probe.Upload;
using Survey6.Probe.Uplink;

namespace Survey6.Probe.Daemon;

/// <summary>
/// Wiring of the probe daemon. Its settings come in the order every program shares (<see cref="ConfigurationLayers"/>),
/// with command-line overrides such as <c>--state-dir</c> as <c>Probe:StateDirectory</c>.
/// </summary>
public static class ProbeDaemonHosting
{
    /// <summary>The daemon's host as <c>survey6 probe run</c> builds it; tests use it too.</summary>
    public static HostApplicationBuilder CreateBuilder(string? configFile = null, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "survey6-probe",
            // Not the working directory: an appsettings.json lying there must not configure the probe.
            ContentRootPath = AppContext.BaseDirectory,
            Args = [],
        });
        Configuration(configFile, overrides).AddTo(builder.Configuration);
        // Type=notify: READY=1 once started, STOPPING=1 on the way down, journal-friendly log lines.
        builder.Services.AddSystemd();
        builder.Services.AddSurvey6Probe();
        builder.Services.AddSurvey6Uplink(builder.Configuration[ProbeOptions.SectionName + ":" + nameof(ProbeOptions.StateDirectory)] ?? JoinSettings.DefaultStateDirectory);
        return builder;
    }

    /// <summary>The probe's configuration sources: its defaults, /etc/survey6/probe.json, <paramref name="configFile"/>, the environment, <paramref name="overrides"/>.</summary>
    public static ConfigurationLayers Configuration(string? configFile, IReadOnlyDictionary<string, string?>? overrides) =>
        new("probe") { ConfigFile = configFile, Overrides = overrides };

    /// <summary>Options (validated at start), capture, spool, the daemon and its control socket.</summary>
    public static IServiceCollection AddSurvey6Probe(this IServiceCollection services)
    {
        services.AddOptions<ProbeOptions>().BindConfiguration(ProbeOptions.SectionName).ValidateOnStart();
        services.AddOptions<CaptureOptions>().BindConfiguration(CaptureOptions.SectionName).ValidateOnStart();
        services.AddOptions<SpoolOptions>().BindConfiguration(SpoolOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ProbeOptions>, ProbeOptionsValidator>();
        services.AddSingleton<IValidateOptions<CaptureOptions>, CaptureOptionsValidator>();
        services.AddSingleton<IValidateOptions<SpoolOptions>, SpoolOptionsValidator>();
        services.AddOptions<ProbePolicyOptions>().BindConfiguration(ProbePolicyOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ProbePolicyOptions>, ProbePolicyOptionsValidator>();
        services.AddSingleton<Uplink.UploadSchedule>();
        services.AddSingleton<PolicyController>();

        services.TryAddSingleton<TimeProvider>(sp => sp.GetRequiredService<IOptions<ProbeOptions>>().Value.ClockOffset is { Ticks: not 0 } offset
            ? new OffsetTimeProvider(offset)
            : TimeProvider.System);
        services.AddSingleton(sp => ProbeIdentity.From(sp.GetRequiredService<IOptions<ProbeOptions>>().Value));
        services.AddSingleton(sp => new ProbeDaemonPaths(sp.GetRequiredService<IOptions<ProbeOptions>>().Value.StateDirectory));
        services.AddSingleton(sp =>
        {
            var capture = sp.GetRequiredService<IOptions<CaptureOptions>>().Value;
            return new CaptureQueue(capture.QueueCapacity, capture.QueueMaxBytes);
        });
        services.AddSingleton<CaptureEngine>();
        services.AddSingleton(sp =>
        {
            var configured = sp.GetRequiredService<IOptions<SpoolOptions>>().Value.Directory;
            var path = string.IsNullOrWhiteSpace(configured) ? sp.GetRequiredService<ProbeDaemonPaths>().DefaultSpoolPath : configured;
            return new SpoolDirectory(path, sp.GetRequiredService<ILogger<SpoolDirectory>>());
        });
        services.AddSingleton<SpoolWriter>();
        services.AddSingleton<ProbeDaemon>();
        services.AddSingleton<IProbeAgent>(sp => sp.GetRequiredService<ProbeDaemon>());
        services.AddHostedService(sp => sp.GetRequiredService<ProbeDaemon>());
        services.AddHostedService<ProbeDaemonSocket>();
        return services;
    }

    /// <summary>
    /// Upload options, the shared rate cap and interface counters; the uploader and the control link only when
    /// <paramref name="stateDirectory"/> holds a joined identity (without one the daemon captures only).
    /// </summary>
    public static IServiceCollection AddSurvey6Uplink(this IServiceCollection services, string stateDirectory)
    {
        services.AddOptions<UploadOptions>().BindConfiguration(UploadOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<UploadOptions>, UploadOptionsValidator>();
        services.AddSingleton(sp => new TokenBucketRateLimiter(sp.GetRequiredService<IOptions<UploadOptions>>().Value.MaxBytesPerSecond, 0, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new InterfaceTraffic(sp.GetRequiredService<IOptions<CaptureOptions>>().Value.Interfaces, sp.GetRequiredService<TimeProvider>()));
        var state = new ProbeStateDirectory(stateDirectory);
        // Always there (the capture engine asks for it); it leaves something out only for a joined probe.
        services.AddSingleton(sp => OwnTraffic.For(state, sp.GetRequiredService<IOptions<CaptureOptions>>().Value, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<OwnTraffic>>()));
        if (state.IsJoined)
            services.AddSingleton<IProbeTask>(sp => sp.GetRequiredService<OwnTraffic>());
        services.AddOptions<CertificateOptions>().BindConfiguration(CertificateOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<CertificateOptions>, CertificateOptionsValidator>();
        if (state.IsJoined && File.Exists(state.CertificatePath) && File.Exists(state.KeyPath))
        {
            services.AddSingleton(new ProbeCredentials(state));
            services.AddSingleton<IUploader, SpoolUploader>();
            services.AddSingleton<IControlLink, ControlLink>();
            services.AddSingleton<IProbeTask, CertificateRenewer>();
        }

        return services;
    }

    /// <summary>The spool directory the daemon would use, for commands that run without it.</summary>
    public static string SpoolDirectoryFor(string? configFile, string stateDirectory)
    {
        var configuration = Configuration(configFile, null).Build();
        var configured = configuration.GetSection(SpoolOptions.SectionName).Get<SpoolOptions>()?.Directory;
        return string.IsNullOrWhiteSpace(configured) ? new ProbeDaemonPaths(stateDirectory).DefaultSpoolPath : Path.GetFullPath(configured);
    }
}
