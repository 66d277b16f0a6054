using System.Text.Json;
using Grpc.Core;
using Microsoft.Data.Sqlite;
using Survey6.Contracts.V1;
using Survey6.Server.Enrollment;
using Survey6.Server.Storage;
using Survey6.Server.Tests.Web;
using Survey6.Server.Web;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// Everything a probe says about itself is stored and shown to operators, so every string and list it sends is
/// bounded: at join (refused, or cut, field by field) and in heartbeats (cut).
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class HostFactsLimitTests : IAsyncLifetime
{
    private const int Megabyte = 1 << 20;
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_join_with_a_3_MB_hostname_is_refused_with_the_reason_and_stores_nothing()
    {
        var token = _server.CreateToken();
        var e = await Assert.ThrowsAsync<RpcException>(() => _server.JoinAsync(token, new HostFacts { Hostname = new string('h', 3 * Megabyte) }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("bad-facts", e.Trailers.GetValue(EnrollmentService.RefusalTrailer));
        Assert.Equal($"join refused: bad-facts: hostname longer than {HostFactLimits.MaxHostnameLength} characters", e.Status.Detail);
        Assert.Empty(_server.Probes.List());
        Assert.Equal(0, _server.Tokens.List().Single().Used); // the token can still be used
    }

    [Fact]
    public async Task Oversized_descriptive_facts_are_cut_to_their_limits_and_the_probe_joins()
    {
        var facts = new HostFacts
        {
            Hostname = "edge-1",
            Os = new string('o', Megabyte),
            Kernel = new string('k', Megabyte),
            SoftwareVersion = new string('v', Megabyte),
        };
        for (int i = 0; i < 5_000; i++)
            facts.Interfaces.Add(new Interface { Name = "veth" + i, Mac = "02:00:00:00:00:01", Addresses = { "2001:db8::1/64", "fe80::1/64" } });
        facts.Interfaces[0].Name = new string('n', 100_000);
        facts.Interfaces[0].Mac = new string('m', 100_000);
        for (int i = 0; i < 1_000; i++)
            facts.Interfaces[1].Addresses.Add($"2001:db8::{i:x}/128");
        facts.Interfaces[2].Addresses.Add(new string('a', 100_000));

        var (response, _) = await _server.JoinAsync(_server.CreateToken(), facts);

        var probe = _server.Probes.Get(response.ProbeId)!;
        Assert.True(probe.FactsJson.Length < 64 << 10, $"facts stored as {probe.FactsJson.Length} characters");
        var stored = JsonDocument.Parse(probe.FactsJson).RootElement;
        Assert.Equal(HostFactLimits.MaxOsLength, stored.GetProperty("os").GetString()!.Length);
        Assert.Equal(HostFactLimits.MaxKernelLength, stored.GetProperty("kernel").GetString()!.Length);
        Assert.Equal(HostFactLimits.MaxVersionLength, stored.GetProperty("softwareVersion").GetString()!.Length);
        var interfaces = stored.GetProperty("interfaces");
        Assert.Equal(HostFactLimits.MaxInterfaces, interfaces.GetArrayLength());
        Assert.Equal(HostFactLimits.MaxInterfaceNameLength, interfaces[0].GetProperty("name").GetString()!.Length);
        Assert.Equal(HostFactLimits.MaxMacLength, interfaces[0].GetProperty("mac").GetString()!.Length);
        Assert.Equal(HostFactLimits.MaxAddressesPerInterface, interfaces[1].GetProperty("addresses").GetArrayLength());
        // An address longer than any address is dropped, not cut into a wrong one.
        Assert.Equal(["2001:db8::1/64", "fe80::1/64"], interfaces[2].GetProperty("addresses").EnumerateArray().Select(a => a.GetString()!).ToArray());

        Assert.True((await FleetPageAsync()).Length < 256 << 10);
    }

    [Fact]
    public async Task Oversized_heartbeat_strings_and_lists_are_cut_before_they_are_stored()
    {
        var (response, certificate) = await _server.JoinAsync(_server.CreateToken());
        await using var stream = ProbeStream.Open(_server, certificate);
        var heartbeat = ProbeStream.Healthy(_server);
        heartbeat.State = ProbeState.Degraded;
        heartbeat.StateReason = new string('r', Megabyte);
        heartbeat.SoftwareVersion = new string('v', Megabyte);
        for (int i = 0; i < 10_000; i++)
            heartbeat.Interfaces.Add(new InterfaceUtilisation { Name = new string('n', 100) + i, RxBytesPerSecond = 1, Utilisation = 0.1 });
        await stream.HeartbeatAsync(heartbeat);

        _ = _server.Probes; // waits for the heartbeat writer
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(_server.DataDirectory, "state.db"), Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT length(heartbeat_json), length(reported_reason) FROM probe_status WHERE probe_id = $id";
        command.Parameters.AddWithValue("$id", response.ProbeId);
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.True(reader.GetInt64(0) < 64 << 10, $"heartbeat stored as {reader.GetInt64(0)} characters");
        Assert.Equal(HostFactLimits.MaxStateReasonLength, reader.GetInt64(1));
        Assert.True((await FleetPageAsync()).Length < 256 << 10);
    }

    private async Task<string> FleetPageAsync()
    {
        _server.Get<WebAdminStore>().SetPassword("correct horse battery");
        using var client = WebLogin.Client(_server);
        await WebLogin.LoginAsync(client, "correct horse battery");
        return await client.GetStringAsync(new Uri("/", UriKind.Relative));
    }
}
