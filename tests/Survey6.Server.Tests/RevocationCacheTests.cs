using Grpc.Core;
using Microsoft.Extensions.Options;
using Survey6.Contracts.V1;
using Survey6.Server.Api;
using Survey6.Server.Control;
using Survey6.Server.Options;
using Survey6.Server.Security;
using Survey6.Server.Storage;
using UploadClient = Survey6.Contracts.V1.Upload.UploadClient;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>Certificates found valid are remembered, and every revocation makes the very next call fail.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class RevocationCacheTests : IAsyncLifetime
{
    private static readonly string AnySha = new('a', 64);
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(string ProbeId, UploadClient Client)> JoinAndCallAsync()
    {
        var (response, certificate) = await _server.JoinAsync(_server.CreateToken());
        var client = new UploadClient(_server.Channel(certificate));
        await client.GetUploadStatusAsync(new UploadStatusRequest { Sha256 = AnySha });
        return (response.ProbeId, client);
    }

    private static async Task AssertRevokedAsync(UploadClient client)
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.GetUploadStatusAsync(new UploadStatusRequest { Sha256 = AnySha }));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("certificate revoked", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_valid_certificate_is_looked_up_once_and_then_served_from_memory()
    {
        var (_, client) = await JoinAndCallAsync();
        var revocations = _server.Get<ProbeRevocations>();
        Assert.Equal(1, revocations.CachedCertificates);
        for (int i = 0; i < 3; i++)
            await client.GetUploadStatusAsync(new UploadStatusRequest { Sha256 = AnySha });
        Assert.Equal(1, revocations.CachedCertificates);
    }

    [Fact]
    public async Task A_probe_revoked_by_the_operator_in_the_server_is_refused_on_its_next_call()
    {
        var (probeId, client) = await JoinAndCallAsync();
        _server.Get<ProbeRevoker>().Revoke(probeId, "stolen", "test");
        await AssertRevokedAsync(client);
        Assert.Equal(0, _server.Get<ProbeRevocations>().CachedCertificates);
    }

    [Fact]
    public async Task A_probe_revoked_through_the_api_is_refused_on_its_next_call()
    {
        var (probeId, client) = await JoinAndCallAsync();
        Assert.Equal(ProbeRevokeOutcome.Revoked, await _server.Get<IProbeCommands>().RevokeAsync(probeId, "lost", "test", "127.0.0.1", CancellationToken.None));
        await AssertRevokedAsync(client);
    }

    [Fact]
    public async Task A_probe_that_left_is_refused_on_its_next_call()
    {
        var (response, certificate) = await _server.JoinAsync(_server.CreateToken());
        var client = new UploadClient(_server.Channel(certificate));
        await client.GetUploadStatusAsync(new UploadStatusRequest { Sha256 = AnySha });
        await _server.Enrollment(certificate).LeaveAsync(new LeaveRequest { Reason = "bye" });
        await AssertRevokedAsync(client);
        Assert.True(_server.Get<ProbeRevocations>().IsProbeRevoked(response.ProbeId));
    }

    [Fact]
    public async Task A_probe_revoked_by_another_process_is_refused_once_the_poller_has_seen_it()
    {
        var (probeId, client) = await JoinAndCallAsync();
        // What `survey6 server probe revoke` does: state.db only, nothing in this process is told.
        var elsewhere = new ProbeRevoker(_server.Get<StateDatabase>(), TimeProvider.System, new ProbeNotifier());
        elsewhere.Revoke(probeId, "from the cli", "cli:test");
        _server.Time.Advance(TimeSpan.FromSeconds(1)); // Server:Control:ExternalChangePollInterval
        await ProbeChanges.EventuallyAsync(() => _server.Get<ProbeRevocations>().IsProbeRevoked(probeId), "revocation seen by the poller");
        await AssertRevokedAsync(client);
    }

    [Fact]
    public async Task A_probe_revoked_by_another_process_cannot_upload_before_the_poller_has_seen_it()
    {
        var (probeId, client) = await JoinAndCallAsync();
        var elsewhere = new ProbeRevoker(_server.Get<StateDatabase>(), TimeProvider.System, new ProbeNotifier());
        elsewhere.Revoke(probeId, "from the cli", "cli:test");
        Assert.False(_server.Get<ProbeRevocations>().IsProbeRevoked(probeId)); // the poller has not run: the clock stands still

        // An upload is a client stream: its certificate is checked against state.db, not memory.
        using var upload = client.Upload();
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await upload.RequestStream.WriteAsync(new UploadChunk { Header = new Survey6.Contracts.V1.UploadHeader { Sha256 = AnySha, Size = 1 } });
            await upload.RequestStream.CompleteAsync();
            await upload.ResponseAsync;
        });
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("certificate revoked", e.Status.Detail, StringComparison.Ordinal);
        // ... and from then on the cached calls are refused too.
        Assert.True(_server.Get<ProbeRevocations>().IsProbeRevoked(probeId));
        await AssertRevokedAsync(client);
    }
}
