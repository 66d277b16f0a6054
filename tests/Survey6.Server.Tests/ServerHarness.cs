using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Survey6.Aggregator;
using Survey6.Contracts.V1;
using EnrollmentClient = Survey6.Contracts.V1.Enrollment.EnrollmentClient;
using Survey6.Probe.Join;
using Survey6.Server.Diagnostics;
using Survey6.Server.Hosting;
using Survey6.Server.Pki;
using Survey6.Server.Storage;

namespace Survey6.Server.Tests;

/// <summary>
/// A real server on 127.0.0.1 with a free port, real TLS and a temporary data directory, on a
/// <see cref="FakeTimeProvider"/> that starts at the real time (clients check certificates
/// against the real clock).
/// </summary>
public sealed class ServerHarness : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _stopped;

    private ServerHarness(WebApplication app, string root, FakeTimeProvider time)
    {
        _app = app;
        Root = root;
        Time = time;
        Endpoints = ServerEndpoints.From(app.Services);
    }

    public string Root { get; }

    public string DataDirectory => Path.Combine(Root, "server");

    public FakeTimeProvider Time { get; }

    public ServerEndpoints Endpoints { get; }

    public Uri GrpcUrl => Endpoints.GrpcUrl;

    public ServerPki Pki => Get<ServerPki>();

    public TokenStore Tokens => Get<TokenStore>();

    // Heartbeats are acknowledged before they are written: direct reads of state.db wait for the writer first.
    public ProbeStore Probes => Stored(Get<ProbeStore>());

    public EventStore Events => Stored(Get<EventStore>());

    public ServerCounters Counters => Get<ServerCounters>();

    public static Task<ServerHarness> StartAsync(IReadOnlyDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null) =>
        StartAsync(TempDirectory.Create(), settings, services);

    /// <param name="aggregatorViews">
    /// Whether the host registers the aggregator's ledger and lake readers for the data page, as <c>survey6 server run</c>
    /// does; without them the server is composed as a host without the aggregator's code.
    /// </param>
    public static async Task<ServerHarness> StartAsync(string root, IReadOnlyDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null,
        bool aggregatorViews = true)
    {
        var overrides = new Dictionary<string, string?>
        {
            ["Server:DataDirectory"] = Path.Combine(root, "server"),
            ["Server:GrpcListen"] = "127.0.0.1:0",
            ["Server:HttpListen"] = "127.0.0.1:0",
            ["Server:JoinRateLimit:PermitLimit"] = "1000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            overrides[key] = value;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var builder = ServerApplication.CreateBuilder(null, overrides);
        builder.Services.AddSingleton<TimeProvider>(time);
        if (aggregatorViews)
            builder.Services.AddSurvey6AggregatorViews();
        services?.Invoke(builder.Services);
        builder.Logging.ClearProviders();
        var app = ServerApplication.Build(builder);
        await app.StartAsync();
        return new ServerHarness(app, root, time);
    }

    private T Stored<T>(T store)
    {
        // A test's synchronous accessor: it blocks the test thread only, and the writer runs on its own thread.
        Get<Survey6.Server.Control.HeartbeatWriter>().WaitUntilStoredAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        return store;
    }

    public T Get<T>()
        where T : notnull => _app.Services.GetRequiredService<T>();

    public string CreateToken(int uses = 1, TimeSpan? ttl = null, IReadOnlyDictionary<string, string>? labels = null) =>
        Tokens.Create(ttl ?? TimeSpan.FromHours(1), uses, labels ?? new Dictionary<string, string>(), "test").Token;

    /// <summary>A gRPC channel that trusts only this server's CA and presents <paramref name="clientCertificate"/> if given.</summary>
    public GrpcChannel Channel(X509Certificate2? clientCertificate = null)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = PinnedCa.Callback(Pki.Authority.PublicCertificate, _ => { }),
                ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
            },
        };
        return GrpcChannel.ForAddress(GrpcUrl, new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    public EnrollmentClient Enrollment(X509Certificate2? clientCertificate = null) => new(Channel(clientCertificate));

    /// <summary>Joins with a new P-256 key; returns the response and the issued certificate with that key.</summary>
    public async Task<(JoinResponse Response, X509Certificate2 Certificate)> JoinAsync(string token, HostFacts? facts = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var response = await Enrollment().JoinAsync(new JoinRequest
        {
            Token = token,
            CsrDer = ByteString.CopyFrom(Csr(key)),
            Facts = facts ?? new HostFacts { Hostname = "test-host" },
        });
        using var issued = X509CertificateLoader.LoadCertificate(response.CertificateDer.Span);
        return (response, WithKey(issued, key));
    }

    public static byte[] Csr(ECDsa key, string subject = "CN=whoever") =>
        new CertificateRequest(subject, key, HashAlgorithmName.SHA256).CreateSigningRequest();

    /// <summary>
    /// Attaches the key and round-trips through PKCS#12 so the certificate is usable as a TLS
    /// client certificate independently of the caller's key object.
    /// </summary>
    public static X509Certificate2 WithKey(X509Certificate2 certificate, ECDsa key)
    {
        using var withKey = certificate.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A graceful stop (what SIGTERM does); <see cref="DisposeAsync"/> still cleans up.</summary>
    public Task StopAsync() => _app.StopAsync();

    /// <summary>Stops the server as a shutdown would, keeping its data directory for a restart on <see cref="Root"/>.</summary>
    public async Task StopKeepingDataAsync()
    {
        if (_stopped)
            return;
        _stopped = true;
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopKeepingDataAsync();
        TempDirectory.Delete(Root);
    }
}

internal static class TempDirectory
{
    public static string Create()
    {
        var path = Path.Combine(Path.GetTempPath(), "survey6-tests", Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(path);
        return path;
    }

    public static void Delete(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
