using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Data.Sqlite;
using Survey6.Contracts.V1;
using Survey6.Probe.Join;
using Survey6.Server.Api;
using Survey6.Server.Storage;
using Xunit.Abstractions;
using ControlClient = Survey6.Contracts.V1.Control.ControlClient;
using EnrollmentClient = Survey6.Contracts.V1.Enrollment.EnrollmentClient;
using UploadClient = Survey6.Contracts.V1.Upload.UploadClient;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// The attack of a probe that keeps renewing its certificate while it is being revoked: no certificate issued in
/// that race may work, not even after the server restarts and has forgotten what it held in memory.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class RevocationRestartTests(ITestOutputHelper output) : IDisposable
{
    private const int InFlight = 16;
    private const int RenewalsBeforeRevocation = 48;
    private readonly string _root = TempDirectory.Create();

    public void Dispose() => TempDirectory.Delete(_root);

    [Fact]
    public async Task Certificates_renewed_in_a_race_with_revocation_are_refused_after_a_real_restart()
    {
        var data = Path.Combine(_root, "server");
        // The race needs renewals in flight, more than the per-probe renewal limit allows: the attacker gets them anyway
        // by spreading them out, so the limit is lifted here to make the race as wide as possible.
        var environment = new Dictionary<string, string> { ["Server__RenewalRateLimit__PermitLimit"] = "100000" };
        var server = await ServerProcess.StartAsync(data, 0, environment: environment, httpListen: "127.0.0.1:0");
        try
        {
            var database = StateDatabase.OpenAndMigrate(Path.Combine(data, "state.db"));
            var token = new TokenStore(database, TimeProvider.System).Create(TimeSpan.FromHours(1), 2, new Dictionary<string, string>(), "race").Token;
            var apiToken = new ApiTokenStore(database, TimeProvider.System).Create("race", TimeSpan.FromHours(1)).Token;
            using var ca = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(data, "pki", "ca.pem"));

            // Probe A is revoked through the API, probe B from the CLI in another process.
            var (probeA, certificateA) = await JoinAsync(server.GrpcUrl, ca, token);
            var (probeB, certificateB) = await JoinAsync(server.GrpcUrl, ca, token);
            var issuedA = await RenewWhileRevokedAsync(server.GrpcUrl, ca, certificateA, async () =>
            {
                using var http = new HttpClient { BaseAddress = server.HttpUrl, Timeout = TimeSpan.FromSeconds(30) };
                http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiToken);
                var response = await http.PostAsync(new Uri($"/api/v1/probes/{probeA}/revoke", UriKind.Relative), null);
                Assert.True(response.IsSuccessStatusCode, $"revoke through the API: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            });
            var issuedB = await RenewWhileRevokedAsync(server.GrpcUrl, ca, certificateB, async () =>
            {
                var (status, text) = await ServerProcess.RunCliAsync(null, "server", "probe", "revoke", probeB, "--reason", "stolen", "--data-dir", data);
                Assert.True(status == 0, "survey6 server probe revoke: " + text);
            });
            output.WriteLine($"probe A: {issuedA.Count} certificates renewed; probe B: {issuedB.Count}");
            var unrevokedRows = UnrevokedCertificates(data, probeA).Concat(UnrevokedCertificates(data, probeB)).ToList();

            // A real restart: a new process with nothing in memory.
            server.Kill();
            server.Dispose();
            server = await ServerProcess.StartAsync(data, 0, environment: environment);
            var capture = UploadTestSupport.Capture(7, 4 << 10);
            var accepted = new List<string>();
            foreach (var certificate in new[] { certificateA, certificateB }.Concat(issuedA).Concat(issuedB))
                accepted.AddRange(await CallsAcceptedAsync(server.GrpcUrl, ca, certificate, capture));

            Assert.True(unrevokedRows.Count == 0, $"certificates of revoked probes issued after the revocation: {string.Join(", ", unrevokedRows)}");
            Assert.True(accepted.Count == 0, "calls accepted after the restart:\n" + string.Join("\n", accepted));
            Assert.Empty(UploadTestSupport.StoredCopies(data, UploadTestSupport.Sha(capture)));
        }
        catch
        {
            output.WriteLine(server.Output);
            throw;
        }
        finally
        {
            server.Dispose();
        }
    }

    [Fact]
    public async Task A_certificate_whose_row_was_left_unrevoked_is_refused_once_its_probe_is_revoked_even_after_a_restart()
    {
        var server = await ServerHarness.StartAsync(_root);
        try
        {
            var (joined, certificate) = await server.JoinAsync(server.CreateToken());
            server.Get<Survey6.Server.Control.ProbeRevoker>().Revoke(joined.ProbeId, "stolen", "test");
            // What the race left behind before: a certificate of a revoked probe whose own row says nothing.
            using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(server.DataDirectory, "state.db"), Pooling = false }.ToString()))
            {
                connection.Open();
                using var command = connection.CreateCommand();
                command.CommandText = "UPDATE certificates SET revoked_at = NULL WHERE probe_id = $id";
                command.Parameters.AddWithValue("$id", joined.ProbeId);
                Assert.Equal(1, command.ExecuteNonQuery());
            }

            await server.StopKeepingDataAsync();
            server = await ServerHarness.StartAsync(_root);
            var status = await Assert.ThrowsAsync<RpcException>(async () =>
                await new UploadClient(server.Channel(certificate)).GetUploadStatusAsync(new UploadStatusRequest { Sha256 = new string('a', 64) }));
            Assert.Equal(StatusCode.PermissionDenied, status.StatusCode);
            Assert.Contains("certificate revoked", status.Status.Detail, StringComparison.Ordinal);
            await using var stream = ProbeStream.Open(server, certificate);
            var ended = await stream.Ended.WaitAsync(ProbeStream.Wait);
            Assert.Equal(StatusCode.PermissionDenied, ended!.StatusCode);
        }
        finally
        {
            await server.StopKeepingDataAsync();
        }
    }

    [Fact]
    public async Task Renewals_are_limited_per_probe_and_the_refusal_says_why()
    {
        await using var server = await ServerHarness.StartAsync();
        var limit = new Survey6.Server.Options.RenewalRateLimitOptions();
        var token = server.CreateToken(uses: 2);
        var (_, certificate) = await server.JoinAsync(token);
        var (_, other) = await server.JoinAsync(token);
        for (int i = 0; i < limit.PermitLimit; i++)
            await RenewAsync(server, certificate);

        var refused = await Assert.ThrowsAsync<RpcException>(() => RenewAsync(server, certificate));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains($"at most {limit.PermitLimit} renewals", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, server.Counters.Get("renew.refused.rate-limited"));
        await RenewAsync(server, other); // another probe is not affected

        server.Time.Advance(limit.Window);
        await RenewAsync(server, certificate);
    }

    private static async Task RenewAsync(ServerHarness server, X509Certificate2 certificate)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await server.Enrollment(certificate).RenewCertificateAsync(new RenewRequest { CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key)) });
    }

    /// <summary>
    /// Keeps <see cref="InFlight"/> renewals in flight with <paramref name="certificate"/>, revokes the probe once
    /// <see cref="RenewalsBeforeRevocation"/> succeeded, and goes on until every renewal is refused; returns every
    /// certificate obtained.
    /// </summary>
    private async Task<List<X509Certificate2>> RenewWhileRevokedAsync(Uri url, X509Certificate2 ca, X509Certificate2 certificate, Func<Task> revoke)
    {
        var issued = new ConcurrentBag<X509Certificate2>();
        var revocationDue = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var deadline = DateTime.UtcNow.AddSeconds(120);
        using var channel = Channel(url, ca, certificate);
        var client = new EnrollmentClient(channel);
        var refusals = new ConcurrentBag<string>();
        var workers = Enumerable.Range(0, InFlight).Select(_ => Task.Run(async () =>
        {
            while (DateTime.UtcNow < deadline)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                try
                {
                    var response = await client.RenewCertificateAsync(new RenewRequest { CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key)) });
                    using var renewed = X509CertificateLoader.LoadCertificate(response.CertificateDer.Span);
                    issued.Add(ServerHarness.WithKey(renewed, key));
                    if (issued.Count >= RenewalsBeforeRevocation)
                        revocationDue.TrySetResult();
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
                {
                    refusals.Add(e.Status.Detail);
                    return;
                }
            }
        })).ToList();

        await revocationDue.Task.WaitAsync(TimeSpan.FromSeconds(90));
        var before = issued.Count;
        await revoke();
        await Task.WhenAll(workers);
        Assert.Equal(InFlight, refusals.Count); // every worker ended on a refusal, none on the deadline
        output.WriteLine($"{before} renewed before the revocation was sent, {issued.Count - before} after; refusals: {string.Join("; ", refusals.Distinct())}");
        return [.. issued];
    }

    /// <summary>Which of Control.Connect, GetUploadStatus and Upload the server accepts with <paramref name="certificate"/>.</summary>
    private static async Task<List<string>> CallsAcceptedAsync(Uri url, X509Certificate2 ca, X509Certificate2 certificate, byte[] capture)
    {
        var accepted = new List<string>();
        using var channel = Channel(url, ca, certificate);
        var who = $"{certificate.GetNameInfo(X509NameType.SimpleName, false)} serial {certificate.SerialNumber}";

        using (var call = new ControlClient(channel).Connect(deadline: DateTime.UtcNow.AddSeconds(30)))
        {
            try
            {
                await call.RequestStream.WriteAsync(new ProbeMessage { Heartbeat = new Heartbeat { State = ProbeState.Capturing, Sequence = 1 } });
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException)
            {
                // The server ended the call before the write: reading gives its status.
            }

            try
            {
                if (await call.ResponseStream.MoveNext(CancellationToken.None))
                    accepted.Add($"Control.Connect ({who}): {call.ResponseStream.Current.KindCase}");
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
            {
            }
        }

        try
        {
            await new UploadClient(channel).GetUploadStatusAsync(new UploadStatusRequest { Sha256 = UploadTestSupport.Sha(capture) }, deadline: DateTime.UtcNow.AddSeconds(30));
            accepted.Add($"GetUploadStatus ({who})");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
        {
        }

        using (var call = new UploadClient(channel).Upload(deadline: DateTime.UtcNow.AddSeconds(30)))
        {
            try
            {
                foreach (var message in UploadTestSupport.WholeUpload(capture))
                    await call.RequestStream.WriteAsync(message);
                await call.RequestStream.CompleteAsync();
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException)
            {
            }

            try
            {
                var ack = await call.ResponseAsync;
                accepted.Add($"Upload ({who}): stored {ack.StoredBytes} bytes");
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.PermissionDenied)
            {
            }
        }

        return accepted;
    }

    private static async Task<(string ProbeId, X509Certificate2 Certificate)> JoinAsync(Uri url, X509Certificate2 ca, string token)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var channel = Channel(url, ca, null);
        var response = await new EnrollmentClient(channel).JoinAsync(new JoinRequest
        {
            Token = token,
            CsrDer = ByteString.CopyFrom(ServerHarness.Csr(key)),
            Facts = new HostFacts { Hostname = "racer" },
        });
        using var issued = X509CertificateLoader.LoadCertificate(response.CertificateDer.Span);
        return (response.ProbeId, ServerHarness.WithKey(issued, key));
    }

    private static GrpcChannel Channel(Uri url, X509Certificate2 ca, X509Certificate2? client) =>
        GrpcChannel.ForAddress(url, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = PinnedCa.Callback(ca, _ => { }),
                    ClientCertificates = client is null ? null : new X509CertificateCollection { client },
                },
            },
            DisposeHttpClient = true,
        });

    private static List<string> UnrevokedCertificates(string data, string probeId)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(data, "state.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT c.serial FROM certificates c JOIN probes p ON p.id = c.probe_id WHERE c.probe_id = $id AND p.state = 'revoked' AND c.revoked_at IS NULL";
        command.Parameters.AddWithValue("$id", probeId);
        using var reader = command.ExecuteReader();
        var serials = new List<string>();
        while (reader.Read())
            serials.Add($"{probeId} {reader.GetString(0)}");
        return serials;
    }
}
