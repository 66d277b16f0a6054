using System.Text;
using System.Text.Json.Nodes;
using Survey6.Contracts.Manifests;

namespace Survey6.Contracts.Tests;

/// <summary>The capture manifest contract: what is written, what is read, what is refused and how the refusal reads.</summary>
public sealed class ManifestContractTests
{
    private const string Sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// <summary>A manifest as `survey6 probe run` wrote it before the contract existed (docs/probe.md at that time).</summary>
    private const string WrittenBeforeTheContract = """
        {
          "manifest_version": 1,
          "file": "20250101T120000Z-000042.pcapng",
          "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
          "size": 67104768,
          "sequence": 42,
          "probe_id": "p-abcdefghijkl",
          "hostname": "probe1",
          "version": "0.1.0+abc",
          "labels": { "site": "fra" },
          "location": "50.11,8.68,DE,Frankfurt am Main",
          "capture_start": "2025-01-01T11:00:00.000000000Z",
          "window_start": "2025-01-01T12:00:00.000000001Z",
          "window_end": "2025-01-01T12:05:00.123456789Z",
          "first_frame": "2025-01-01T12:00:00.500000000Z",
          "last_frame": null,
          "frames": 51234,
          "interface": "eth0",
          "filter": "ip6 or (ip proto 41) or (udp port 3544)",
          "snaplen": 262144,
          "received": 51240,
          "drops": { "kernel": 6, "interface": 0, "queue": 2, "disk": null },
          "close_reason": "size",
          "repaired": false,
          "interfaces": [
            { "id": 0, "name": "eth0", "link_type": 1, "snaplen": 262144, "filter": "ip6", "frames": 51234,
              "received": 51240, "kernel_dropped": 6, "interface_dropped": 0, "queue_dropped": 2, "disk_dropped": null }
          ]
        }
        """;

    [Fact]
    public void The_manifest_probes_already_write_is_version_1_of_the_contract()
    {
        var manifest = CaptureManifest.Parse(WrittenBeforeTheContract);
        Assert.Equal(1, manifest.ManifestVersion);
        Assert.Equal((42L, 51234L, "size"), (manifest.Sequence!.Value, manifest.Frames, manifest.CloseReason));
        Assert.Equal(new ManifestDrops { Kernel = 6, Interface = 0, Queue = 2, Disk = null }, manifest.Drops);
        Assert.Equal(1_735_732_800_000_000_001, manifest.WindowStartNs);
        Assert.Equal(1_735_733_100_123_456_789, manifest.WindowEndNs);
        Assert.Null(manifest.LastFrameNs);
        Assert.Equal("fra", manifest.Labels["site"]);
        var eth0 = Assert.Single(manifest.Interfaces);
        Assert.Equal((0, "eth0", 1, 6L, 2L, (long?)null), (eth0.Id, eth0.Name, eth0.LinkType, eth0.KernelDropped!.Value, eth0.QueueDropped!.Value, eth0.DiskDropped));
    }

    [Fact]
    public void A_manifest_round_trips_to_the_same_json_with_times_to_the_nanosecond()
    {
        var manifest = CaptureManifest.Parse(WrittenBeforeTheContract);
        var json = manifest.ToJson();
        Assert.EndsWith("}\n", json, StringComparison.Ordinal);
        Assert.Contains("\"version\": \"0.1.0+abc\"", json, StringComparison.Ordinal); // not escaped as \u002B
        Assert.Contains("\"location\": \"50.11,8.68,DE,Frankfurt am Main\"", json, StringComparison.Ordinal);
        Assert.DoesNotContain("damage", json, StringComparison.Ordinal);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(WrittenBeforeTheContract), JsonNode.Parse(json)), json);
        Assert.Equal(json, CaptureManifest.Parse(json).ToJson());
    }

    [Fact]
    public void Fields_a_later_version_adds_are_ignored_by_readers_and_kept_whole_by_the_store()
    {
        var future = JsonNode.Parse(WrittenBeforeTheContract)!.AsObject();
        future["policy_version"] = 7;
        future["drops"]!["nic_ring"] = 4;
        future["interfaces"]![0]!["hardware"] = new JsonObject { ["driver"] = "ixgbe" };
        var json = future.ToJsonString();

        Assert.Equal(51234, CaptureManifest.Parse(json).Frames);
        var stored = StoredCaptureManifest.Create(Sha, "p-abcdefghijkl", 67104768, "pcapng", 1, 2, 3, new Dictionary<string, string>(), null, json);
        var kept = JsonNode.Parse(Encoding.UTF8.GetString(stored.ToUtf8Json()))!["probe_manifest"];
        Assert.True(JsonNode.DeepEquals(future, kept), kept?.ToJsonString());
    }

    [Theory]
    [InlineData("frames", "missing required field 'frames'")]
    [InlineData("window_start", "missing required field 'window_start'")]
    [InlineData("drops", "missing required field 'drops'")]
    [InlineData("drops.queue", "missing required field 'drops.queue'")]
    [InlineData("interfaces", "missing required field 'interfaces'")]
    public void A_missing_required_field_is_refused_by_name(string field, string problem)
    {
        var manifest = JsonNode.Parse(WrittenBeforeTheContract)!.AsObject();
        var parts = field.Split('.');
        (parts.Length == 1 ? manifest : manifest[parts[0]]!.AsObject()).Remove(parts[^1]);
        AssertRefused(manifest.ToJsonString(), problem);
    }

    [Theory]
    [InlineData("frames", "\"many\"", "field 'frames' is not an integer")]
    [InlineData("size", "1.5", "field 'size' is not an integer")]
    [InlineData("drops.queue", "\"5\"", "field 'drops.queue' is not an integer")]
    [InlineData("labels", "{\"site\": 1}", "field 'labels.site' is not a string")]
    [InlineData("labels", "[\"site\"]", "field 'labels' is not an object of strings")]
    [InlineData("interfaces", "{}", "field 'interfaces' is not an array")]
    [InlineData("repaired", "\"no\"", "field 'repaired' is not true or false")]
    [InlineData("file", "null", "field 'file' must not be null")]
    [InlineData("drops", "null", "field 'drops' must not be null")]
    [InlineData("window_start", "\"yesterday\"", "field 'window_start': 'yesterday' is not an RFC 3339 time like 2025-01-01T12:00:00.000000000Z")]
    [InlineData("window_end", "1735733100", "field 'window_end': not an RFC 3339 time (a string like 2025-01-01T12:00:00.000000000Z)")]
    [InlineData("sha256", "\"abc\"", "field 'sha256' is not 64 hexadecimal digits")]
    [InlineData("drops.disk", "-1", "field 'drops.disk' is negative")]
    [InlineData("window_end", "\"2025-01-01T11:59:59Z\"", "field 'window_end' is before 'window_start'")]
    public void A_field_of_the_wrong_type_or_out_of_range_is_refused_by_name(string field, string value, string problem)
    {
        var manifest = JsonNode.Parse(WrittenBeforeTheContract)!.AsObject();
        var parts = field.Split('.');
        (parts.Length == 1 ? manifest : manifest[parts[0]]!.AsObject())[parts[^1]] = JsonNode.Parse(value);
        AssertRefused(manifest.ToJsonString(), problem);
    }

    [Theory]
    [InlineData("2", "manifest_version 2 is not one this reader knows (1 to 1)")]
    [InlineData("0", "manifest_version 0 is not one this reader knows (1 to 1)")]
    [InlineData("\"1\"", "field 'manifest_version' is not an integer")]
    public void A_version_this_reader_does_not_know_is_refused(string version, string problem)
    {
        var manifest = JsonNode.Parse(WrittenBeforeTheContract)!.AsObject();
        manifest["manifest_version"] = JsonNode.Parse(version);
        AssertRefused(manifest.ToJsonString(), problem);
    }

    [Theory]
    [InlineData("", "The input does not contain any JSON tokens")]
    [InlineData("[1]", "it is not a JSON object")]
    [InlineData("{\"frames\": 1,", "Expected start of a property name or value, but instead reached end of data")]
    [InlineData("null", "it is null, not an object")]
    public void What_is_not_a_json_object_is_refused(string json, string problem)
    {
        var e = Assert.Throws<ManifestException>(() => CaptureManifest.Parse(json));
        Assert.StartsWith("the manifest is not a survey6 capture manifest (version 1): ", e.Message, StringComparison.Ordinal);
        Assert.Contains(problem, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stored_manifest_in_the_shape_servers_wrote_before_version_2_is_read_with_its_probe_manifest()
    {
        var legacy = $$"""
            {
              "sha256": "{{Sha}}",
              "probe_id": "p-abcdefghijkl",
              "size": 67104768,
              "format": "pcapng",
              "window_start": "2025-01-01T12:00:00+00:00",
              "window_end": "2025-01-01T12:05:00.1234567+00:00",
              "received_at": "2025-01-01T12:06:03.52+00:00",
              "probe_manifest": {{WrittenBeforeTheContract}}
            }
            """;
        var stored = StoredCaptureManifest.Parse(Encoding.UTF8.GetBytes(legacy));
        Assert.Equal((1, (int?)null), (stored.Version, stored.ServerManifestVersion));
        Assert.Equal(("p-abcdefghijkl", 67104768L, "pcapng"), (stored.ProbeId, stored.Size, stored.Format));
        Assert.Equal((1_735_732_800_000_000_000, 1_735_733_100_123_456_700, 1_735_733_163_520_000_000), (stored.WindowStartNs!.Value, stored.WindowEndNs!.Value, stored.ReceivedAtNs!.Value));
        Assert.Null(stored.Labels);
        Assert.Null(stored.Location);
        Assert.Equal(new ManifestDrops { Kernel = 6, Interface = 0, Queue = 2, Disk = null }, stored.ProbeManifest!.Drops);
        Assert.Null(stored.ProbeManifestProblem);

        // Servers then stored whatever object `probe upload --manifest` sent, or null: readable, with the reason kept.
        var other = StoredCaptureManifest.Parse(Encoding.UTF8.GetBytes(legacy.Replace(WrittenBeforeTheContract, """{"interface": "eth0"}""", StringComparison.Ordinal)));
        Assert.Null(other.ProbeManifest);
        Assert.StartsWith("probe_manifest: the manifest is not a survey6 capture manifest (version 1): missing required fields including 'manifest_version', 'file', 'sha256'", other.ProbeManifestProblem, StringComparison.Ordinal);
        var none = StoredCaptureManifest.Parse(Encoding.UTF8.GetBytes(legacy.Replace(WrittenBeforeTheContract, "null", StringComparison.Ordinal)));
        Assert.Null(none.ProbeManifest);
        Assert.Null(none.ProbeManifestJson);
        Assert.Null(none.ProbeManifestProblem);
    }

    [Fact]
    public void A_stored_manifest_round_trips_and_keeps_the_servers_fields_apart_from_the_probes()
    {
        var stored = StoredCaptureManifest.Create(Sha, "p-server-says", 67104768, "pcapng", 10, 20, 30,
            new Dictionary<string, string> { ["site"] = "lab", ["rack"] = "r1" }, new ProbeLocation(52.52, 13.405, "DE", "Berlin"), WrittenBeforeTheContract);
        var json = JsonNode.Parse(Encoding.UTF8.GetString(stored.ToUtf8Json()))!;
        Assert.Equal(2, json["server_manifest_version"]!.GetValue<int>());
        Assert.Equal("p-server-says", json["probe_id"]!.GetValue<string>());
        Assert.Equal("p-abcdefghijkl", json["probe_manifest"]!["probe_id"]!.GetValue<string>());
        Assert.Equal("""{"rack":"r1","site":"lab"}""", json["labels"]!.ToJsonString());
        Assert.Equal("""{"latitude":52.52,"longitude":13.405,"country":"DE","city":"Berlin"}""", json["location"]!.ToJsonString());
        Assert.Equal("1970-01-01T00:00:00.000000030Z", json["received_at"]!.GetValue<string>());

        var read = StoredCaptureManifest.Parse(stored.ToUtf8Json());
        Assert.Equal((2, 10L, 20L, 30L), (read.Version, read.WindowStartNs!.Value, read.WindowEndNs!.Value, read.ReceivedAtNs!.Value));
        Assert.Equal(new ProbeLocation(52.52, 13.405, "DE", "Berlin"), read.Location);
        Assert.Equal(["rack", "site"], read.Labels!.Keys);
        Assert.Equal(51234, read.ProbeManifest!.Frames);
        Assert.Equal(stored.ToUtf8Json(), read.ToUtf8Json());
    }

    [Fact]
    public void A_stored_manifest_of_version_2_must_hold_a_valid_probe_manifest_and_a_newer_one_is_refused()
    {
        var stored = JsonNode.Parse(StoredCaptureManifest.Create(Sha, "p-a", 1, "pcapng", 1, 2, 3, new Dictionary<string, string>(), null, WrittenBeforeTheContract).ToUtf8Json())!;
        stored["probe_manifest"]!["frames"] = "x";
        var e = Assert.Throws<ManifestException>(() => StoredCaptureManifest.Parse(Encoding.UTF8.GetBytes(stored.ToJsonString())));
        Assert.Equal("probe_manifest: the manifest is not a survey6 capture manifest (version 1): field 'frames' is not an integer", e.Message);

        stored["server_manifest_version"] = 3;
        e = Assert.Throws<ManifestException>(() => StoredCaptureManifest.Parse(Encoding.UTF8.GetBytes(stored.ToJsonString())));
        Assert.Equal("server_manifest_version 3 is not one this reader knows (1 to 2)", e.Message);

        stored.AsObject().Remove("probe_id");
        e = Assert.Throws<ManifestException>(() => StoredCaptureManifest.Parse(Encoding.UTF8.GetBytes(stored.ToJsonString())));
        Assert.Equal("the stored manifest cannot be read: missing required field 'probe_id'", e.Message);
    }

    [Fact]
    public void A_location_in_the_pcapng_form_becomes_a_probe_location()
    {
        Assert.Equal(new ProbeLocation(50.11, 8.68, "DE", "Frankfurt am Main, Hesse"), ProbeLocation.FromPcapngText("50.11,8.68,DE,Frankfurt am Main, Hesse"));
        Assert.Equal(new ProbeLocation(null, null, "DE", null), ProbeLocation.FromPcapngText(",,DE,"));
        Assert.Null(ProbeLocation.FromPcapngText(",,,"));
        Assert.Null(ProbeLocation.FromPcapngText("north,8.68,DE,X"));
        Assert.Null(ProbeLocation.FromPcapngText(null));
    }

    private static void AssertRefused(string json, string problem)
    {
        var e = Assert.Throws<ManifestException>(() => CaptureManifest.Parse(json));
        Assert.Equal("the manifest is not a survey6 capture manifest (version 1): " + problem, e.Message);
    }
}
