using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using Survey6.Aggregator.Anonymisation;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Packets.Addresses;

namespace Survey6.Aggregator.Tests;

/// <summary>Crypto-PAn: the reference results, its properties over every prefix length, the key file.</summary>
public class AnonymisationTests
{
    /// <summary>The key of the sample trace in the Crypto-PAn reference distribution.</summary>
    private static readonly byte[] ReferenceKey =
    [
        21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16,
        216, 152, 143, 131, 121, 121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
    ];

    /// <summary>Addresses of the reference sample trace (sample_trace_raw.dat) and their sanitised forms.</summary>
    public static TheoryData<string, string> ReferenceVectors => new()
    {
        { "128.11.68.132", "135.242.180.132" }, { "129.118.74.4", "134.136.186.123" }, { "130.132.252.244", "133.68.164.234" },
        { "141.223.7.43", "141.167.8.160" }, { "141.233.145.108", "141.129.237.235" }, { "152.163.225.39", "151.140.114.167" },
        { "156.29.3.236", "147.225.12.42" }, { "165.247.96.84", "162.9.99.234" }, { "166.107.77.190", "160.132.178.185" },
        { "192.102.249.13", "252.138.62.131" }, { "192.215.32.125", "252.43.47.189" }, { "192.233.80.103", "252.25.108.8" },
        { "192.41.57.43", "252.222.221.184" }, { "193.150.244.223", "253.169.52.216" }, { "195.205.63.100", "255.186.223.5" },
        { "198.200.171.101", "249.199.68.213" }, { "198.26.132.101", "249.36.123.202" }, { "198.36.213.5", "249.7.21.132" },
        { "198.51.77.238", "249.18.186.254" }, { "199.217.79.101", "248.38.184.213" }, { "202.49.198.20", "245.206.7.234" },
        { "203.12.160.252", "244.248.163.4" }, { "204.184.162.189", "243.192.77.90" }, { "204.202.136.230", "243.178.4.198" },
        { "204.29.20.4", "243.33.20.123" }, { "205.178.38.67", "242.108.198.51" }, { "205.188.147.153", "242.96.16.101" },
        { "205.188.248.25", "242.96.88.27" }, { "205.245.121.43", "242.21.121.163" }, { "207.105.49.5", "241.118.205.138" },
        { "207.135.65.238", "241.202.129.222" }, { "207.155.9.214", "241.220.250.22" }, { "207.188.7.45", "241.255.249.220" },
        { "207.25.71.27", "241.33.119.156" }, { "207.33.151.131", "241.1.233.131" }, { "208.147.89.59", "227.237.98.191" },
        { "208.234.120.210", "227.154.67.17" }, { "208.28.185.184", "227.39.94.90" }, { "208.52.56.122", "227.8.63.165" },
        { "209.12.231.7", "226.243.167.8" }, { "209.238.72.3", "226.6.119.243" }, { "209.246.74.109", "226.22.124.76" },
        { "209.68.60.238", "226.184.220.233" }, { "209.85.249.6", "226.170.70.6" }, { "212.120.124.31", "228.135.163.231" },
        { "212.146.8.236", "228.19.4.234" }, { "212.186.227.154", "228.59.98.98" }, { "212.204.172.118", "228.71.195.169" },
        { "212.206.130.201", "228.69.242.193" }, { "216.148.237.145", "235.84.194.111" }, { "216.157.30.252", "235.89.31.26" },
        { "216.184.159.48", "235.96.225.78" }, { "216.227.10.221", "235.28.253.36" }, { "216.254.18.172", "235.7.16.162" },
        { "216.32.132.250", "235.192.139.38" }, { "216.35.217.178", "235.195.157.81" }, { "24.0.250.221", "100.15.198.226" },
        { "24.13.62.231", "100.2.192.247" }, { "24.14.213.138", "100.1.42.141" }, { "24.5.0.80", "100.9.15.210" },
        { "24.7.198.88", "100.10.6.25" }, { "24.94.26.44", "100.88.228.35" }, { "38.15.67.68", "64.3.66.187" },
        { "4.3.88.225", "124.60.155.63" }, { "63.14.55.111", "95.9.215.7" }, { "63.195.241.44", "95.179.238.44" },
        { "63.97.7.140", "95.97.9.123" }, { "64.14.118.196", "0.255.183.58" }, { "64.34.154.117", "0.221.154.117" },
        { "64.39.15.238", "0.219.7.41" }, { "10.185.25.118", "117.161.29.118" },
    };

    private static uint V4(string text) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(IPAddress.Parse(text).GetAddressBytes());

    private static string V4(uint value) => new IPAddress(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value)).ToString();

    [Theory]
    [MemberData(nameof(ReferenceVectors))]
    public void Ipv4_matches_the_reference_implementation(string original, string sanitised)
    {
        using var a = new PrefixPreservingAnonymiser(ReferenceKey);
        Assert.Equal(sanitised, V4(a.AnonymiseIpv4(V4(original))));
    }

    [Theory]
    // The same construction over 128 bits in an independent implementation (Go, github.com/Yawning/cryptopan).
    [InlineData("::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed")]
    [InlineData("::2", "78ff:f001:9fc0:20df:8380:b1f1:704:ef")]
    [InlineData("::ffff", "78ff:f001:9fc0:20df:8380:b1f1:704:f838")]
    [InlineData("2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e")]
    [InlineData("2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c")]
    public void Ipv6_matches_an_independent_implementation(string original, string anonymised)
    {
        using var a = new PrefixPreservingAnonymiser(ReferenceKey);
        Assert.Equal(anonymised, a.Anonymise(Ipv6Address.Parse(original)).ToString());
    }

    private static UInt128 Value(Ipv6Address a) => ((UInt128)a.High << 64) | a.Low;

    private static Ipv6Address Address(UInt128 v) => new((ulong)(v >> 64), (ulong)v);

    private static int CommonPrefix(UInt128 a, UInt128 b) => a == b ? 128 : (int)UInt128.LeadingZeroCount(a ^ b);

    private static UInt128 Random128(Random random)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    [Fact]
    public void Two_addresses_sharing_exactly_k_bits_map_to_two_sharing_exactly_k_bits_for_every_k()
    {
        using var a = new PrefixPreservingAnonymiser(RandomNumberGenerator.GetBytes(32));
        var random = new Random(6);
        for (int k = 0; k <= 128; k++)
        {
            for (int round = 0; round < 8; round++)
            {
                var x = Random128(random);
                var keep = k == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - k);
                // Same first k bits, bit k (if any) flipped, the rest random.
                var y = k == 128 ? x : (x & keep) | (~x & (UInt128.One << (127 - k))) | (Random128(random) & ~keep & ((UInt128.One << (127 - k)) - 1));
                Assert.Equal(k, CommonPrefix(x, y));
                var ax = Value(a.Anonymise(Address(x)));
                var ay = Value(a.Anonymise(Address(y)));
                Assert.Equal(k, CommonPrefix(ax, ay));
            }

            // A prefix maps to the first bits of every address inside it.
            var inside = Random128(random);
            var prefix = Value(a.AnonymisePrefix(Address(inside), k));
            var mask = k == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - k);
            Assert.Equal(Value(a.Anonymise(Address(inside))) & mask, prefix);
        }
        for (int k = 0; k <= 32; k++)
        {
            uint x = (uint)random.NextInt64();
            uint y = k == 32 ? x : (x & (k == 0 ? 0u : uint.MaxValue << (32 - k))) | (~x & (1u << (31 - k))) | ((uint)random.NextInt64() & ((1u << (31 - k)) - 1));
            uint ax = a.AnonymiseIpv4(x), ay = a.AnonymiseIpv4(y);
            Assert.Equal(k, x == y ? 32 : BitOperations.LeadingZeroCount(x ^ y));
            Assert.Equal(k, ax == ay ? 32 : BitOperations.LeadingZeroCount(ax ^ ay));
        }
    }

    [Fact]
    public void The_mapping_is_one_to_one_over_a_whole_block()
    {
        using var a = new PrefixPreservingAnonymiser(RandomNumberGenerator.GetBytes(32));
        var basis = Value(Ipv6Address.Parse("2001:db8:5:6:7:8:9:0"));
        var seen = new HashSet<UInt128>();
        for (uint low = 0; low < 1 << 14; low++)
            Assert.True(seen.Add(Value(a.Anonymise(Address(basis | low)))));
        // All of them inside one anonymised /114: prefixes of the block are kept.
        Assert.Single(seen.Select(v => v >> 14).Distinct());

        var seen4 = new HashSet<uint>();
        for (uint low = 0; low < 1 << 16; low++)
            Assert.True(seen4.Add(a.AnonymiseIpv4(0xC6330000u | low)));
    }

    [Fact]
    public void The_mapping_is_fixed_by_the_key_alone()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var other = (byte[])key.Clone();
        other[31] ^= 1; // the pad half alone
        using var first = new PrefixPreservingAnonymiser(key);
        using var second = new PrefixPreservingAnonymiser(key);
        using var third = new PrefixPreservingAnonymiser(other);
        var random = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            var x = Address(Random128(random));
            Assert.Equal(first.Anonymise(x), second.Anonymise(x));
            Assert.NotEqual(first.Anonymise(x), third.Anonymise(x));
        }
        Assert.Equal(first.KeyId, second.KeyId);
        Assert.NotEqual(first.KeyId, third.KeyId);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(key))[..16], first.KeyId);
    }

    [Fact]
    public void Anonymising_an_address_allocates_nothing()
    {
        using var a = new PrefixPreservingAnonymiser(RandomNumberGenerator.GetBytes(32));
        var x = Ipv6Address.Parse("2001:db8::1");
        // Every call measured below is warmed up first: a first call may load types or fill lazy caches.
        for (int i = 0; i < 100; i++)
        {
            x = a.Anonymise(x);
            _ = a.AnonymiseIpv4((uint)x.Low);
            _ = a.AnonymisePrefix(x, 48);
        }
        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                x = a.Anonymise(x);
                _ = a.AnonymiseIpv4((uint)x.Low);
                _ = a.AnonymisePrefix(x, 48);
            }
        }));
    }

    [Fact]
    public void The_default_key_file_is_created_private_once_and_a_configured_one_must_exist()
    {
        var folder = Path.Combine(Path.GetTempPath(), "survey6-key-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            var options = new AggregatorOptions { DataDirectory = folder, Anonymisation = { Enabled = true } };
            string id;
            using (var a = AnonymisationKey.FromOptions(options)!)
                id = a.KeyId;
            var path = new Survey6.Data.DataLayout(folder).AnonymisationKey;
            Assert.Equal(32, new FileInfo(path).Length);
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(PrefixPreservingAnonymiser.ComputeKeyId(File.ReadAllBytes(path)), id);
            using (var again = AnonymisationKey.FromOptions(options)!)
                Assert.Equal(id, again.KeyId);
            Assert.Single(Directory.GetFiles(folder)); // no temp file left

            Assert.Null(AnonymisationKey.FromOptions(new AggregatorOptions { DataDirectory = folder }));
            var missing = new AggregatorOptions { DataDirectory = folder, Anonymisation = { Enabled = true, KeyPath = Path.Combine(folder, "elsewhere.key") } };
            Assert.Contains("does not exist", Assert.Throws<FileNotFoundException>(() => AnonymisationKey.FromOptions(missing)).Message, StringComparison.Ordinal);
            Assert.False(File.Exists(missing.Anonymisation.KeyPath));
            File.WriteAllText(missing.Anonymisation.KeyPath!, "too short");
            Assert.Contains("holds 9 bytes", Assert.Throws<InvalidDataException>(() => AnonymisationKey.FromOptions(missing)).Message, StringComparison.Ordinal);
            File.WriteAllBytes(missing.Anonymisation.KeyPath!, ReferenceKey);
            using (var given = AnonymisationKey.FromOptions(missing)!)
                Assert.Equal("135.242.180.132", V4(given.AnonymiseIpv4(V4("128.11.68.132"))));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static string Reverse6(Ipv6Address address, int nibbles)
    {
        var hex = Convert.ToHexStringLower(Enumerable.Range(0, 16).Select(i => address[i]).ToArray())[..nibbles];
        return string.Join('.', hex.Reverse()) + ".ip6.arpa";
    }

    private static string RewriteName(PrefixPreservingAnonymiser a, string name)
    {
        var buffer = new char[name.Length + ReverseNames.MaxGrowth];
        name.CopyTo(buffer);
        return new string(buffer, 0, ReverseNames.Anonymise(a, buffer, name.Length));
    }

    [Fact]
    public void Reverse_lookup_names_become_those_of_the_anonymised_address_or_prefix()
    {
        using var a = new PrefixPreservingAnonymiser(ReferenceKey);
        var address = Ipv6Address.Parse("2001:db8:1::1");
        Assert.Equal(Reverse6(a.Anonymise(address), 32), RewriteName(a, Reverse6(address, 32)));
        Assert.Equal(Reverse6(a.Anonymise(address), 12), RewriteName(a, Reverse6(address, 12))); // the /48
        Assert.Equal(Reverse6(a.Anonymise(address), 32), RewriteName(a, Reverse6(address, 32).ToUpperInvariant().Replace("IP6.ARPA", "ip6.arpa", StringComparison.Ordinal)));

        Assert.Equal("132.180.242.135.in-addr.arpa", RewriteName(a, "132.68.11.128.in-addr.arpa")); // 128.11.68.132, the reference vector
        Assert.Equal("180.242.135.in-addr.arpa", RewriteName(a, "68.11.128.in-addr.arpa")); // its /24
        Assert.Equal(V4(a.AnonymiseIpv4(0)).Split('.').Reverse().Aggregate((x, y) => x + "." + y) + ".in-addr.arpa", RewriteName(a, "0.0.0.0.in-addr.arpa")); // longer than before

        foreach (var other in new[] { "example.org", "ip6.arpa", "in-addr.arpa", "g.1.ip6.arpa", "10.1.ip6.arpa", "1..ip6.arpa", "256.1.in-addr.arpa", "01.1.in-addr.arpa", "1.2.3.4.5.in-addr.arpa", "_dns-sd._udp.0.1.168.192.in-addr.arpa" })
            Assert.Equal(other, RewriteName(a, other));
    }

    private static readonly string[] RawAddresses =
    [
        "2001:db8:1::1", "2001:db8:2::211:22ff:fe33:4455", "2002:c000:201::1", "2001:db8:53::53", "fe80::1", "ff02::1",
        "2001:db8:2::2", "2001:db8:1::/64", "192.0.2.1", "192.0.2.2",
    ];

    [Fact]
    public async Task With_anonymisation_on_every_output_carries_anonymised_addresses_and_the_key_id()
    {
        using var w = new Workspace(new Dictionary<string, string?> { ["Aggregator:Anonymisation:Enabled"] = "true" });
        w.Store(AggregateTests.First());
        w.Store(AggregateTests.Second());
        w.Store(AggregateTests.Third(), probe: "probe-b");
        var ptrName = Reverse6(Ipv6Address.Parse("2001:db8:1::1"), 32);
        w.Store(new CaptureFile().Add(CaptureFile.At(10, 30, 0), FrameBuilder.Ethernet(0x86DD, FrameBuilder.Ipv6(17,
            FrameBuilder.Udp(50002, 53, FrameBuilder.DnsQuery(ptrName, 12)),
            Ipv6Address.Parse("2001:db8:1::1"), Ipv6Address.Parse("2001:db8:53::53")))).ToArray(), probe: "probe-c");
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        using var a = AnonymisationKey.FromOptions(w.Options)!;
        using var db = w.DuckDb();
        string Anon(string address) => a.Anonymise(Ipv6Address.Parse(address)).ToString();

        // Every output file names the key, the hidden per-capture files too: the tracked connections and the seven partials.
        var files = Directory.EnumerateFiles(w.LakeDirectory, "*.parquet", SearchOption.AllDirectories).ToList();
        // Per capture three files; per dataset one, but flows and connections have one per probe and hour (3 each);
        // the seven partials of each capture; the date's merged dns state (keys, clients, servers, AAAA answers, counts)
        // and icmpv6 state (keys, sources, destinations, counts).
        Assert.Equal(4 * 3 + (LakeLayout.AggregateDatasets.Count - 2) + 3 + 3 + (4 * 7) + 5 + 4, files.Count);
        foreach (var file in files)
        {
            var ids = Workspace.Rows(db, $"SELECT decode(value) FROM parquet_kv_metadata({Workspace.Q(file)}) WHERE decode(key) = 'survey6.anonymisation_key_id'");
            Assert.True(ids.Count == 1 && (string?)ids[0][0] == a.KeyId, file);
        }

        // No raw address anywhere in any row of any output.
        foreach (var file in files)
        {
            foreach (var row in Workspace.Rows(db, $"SELECT * FROM read_parquet({Workspace.Q(file)})"))
            {
                var text = string.Join('|', row.Select(Flatten));
                foreach (var raw in RawAddresses.Append(ptrName))
                    Assert.DoesNotContain(raw, text, StringComparison.Ordinal);
            }
        }

        // Addresses, prefixes and routers are the anonymised ones, consistently across datasets.
        var glob = (string d) => Workspace.Q(Path.Combine(w.Lake.Dataset(d), LakeLayout.HasProbeFolders(d) ? Path.Combine("*", "*", "*.parquet") : Path.Combine("*", "*.parquet")));
        var packetsGlob = Workspace.Q(Path.Combine(w.Lake.Dataset(LakeLayout.Packets), "*", "*", "*.parquet"));
        Assert.Equal(
            new[] { Anon("2001:db8:1::1"), Anon("2001:db8:2::211:22ff:fe33:4455") }.Order(StringComparer.Ordinal),
            Workspace.Rows(db, $"SELECT DISTINCT flow_src FROM read_parquet({glob(LakeLayout.Flows)}) WHERE flow_protocol = 6").Select(r => (string)r[0]!).Order(StringComparer.Ordinal));
        var b = Workspace.Rows(db, $"SELECT prefix48, prefix64, type, iid_class, mac, embedded_ipv4 FROM read_parquet({glob(LakeLayout.Addresses)}) WHERE address = {Workspace.Q(Anon("2001:db8:2::211:22ff:fe33:4455"))}").Single();
        Assert.Equal(a.AnonymisePrefix(Ipv6Address.Parse("2001:db8:2::"), 48) + "/48", b[0]);
        Assert.Equal(a.AnonymisePrefix(Ipv6Address.Parse("2001:db8:2::"), 64) + "/64", b[1]);
        Assert.Equal(("documentation", "ieee-derived", (object?)null, (object?)null), ((string)b[2]!, (string)b[3]!, b[4], b[5])); // classes of the real address
        var router = Workspace.Rows(db, $"SELECT router, prefixes FROM read_parquet({glob(LakeLayout.Icmpv6Routers)})").Single();
        Assert.Equal(Anon("fe80::1"), router[0]);
        Assert.Equal(a.AnonymisePrefix(Ipv6Address.Parse("2001:db8:1::"), 64) + "/64", Assert.Single((System.Collections.IList)router[1]!));
        // The advertised /64 is the /64 of the anonymised address inside it.
        Assert.Equal(1L, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({glob(LakeLayout.Prefixes)}) WHERE prefix_len = 64 AND prefix = {Workspace.Q(a.AnonymisePrefix(Ipv6Address.Parse("2001:db8:1::"), 64) + "/64")}"));
        Assert.Equal(2L, Workspace.Scalar<long>(db, $"SELECT clients FROM read_parquet({glob(LakeLayout.Dns)}) WHERE responses = 0 AND qname = 'example.org'"));
        // The PTR query names the anonymised address, as the address columns do.
        Assert.Equal(Reverse6(a.Anonymise(Ipv6Address.Parse("2001:db8:1::1")), 32), Workspace.Rows(db, $"SELECT qname FROM read_parquet({glob(LakeLayout.Dns)}) WHERE qtype = 12").Single()[0]);
        Assert.Equal(
            [V4(a.AnonymiseIpv4(0xC0000201)), V4(a.AnonymiseIpv4(0xC0000202))],
            Workspace.Rows(db, $"SELECT ipv4_src, ipv4_dst FROM read_parquet({packetsGlob}) WHERE ipv4_src IS NOT NULL").Single().Select(v => (string)v!).ToArray());
    }

    private static string Flatten(object? value) => value switch
    {
        null => "",
        string s => s,
        System.Collections.IDictionary d => string.Join(',', d.Keys.Cast<object>().Select(Flatten)),
        System.Collections.IEnumerable e => string.Join(',', e.Cast<object?>().Select(Flatten)),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    [Fact]
    public async Task A_date_whose_packets_disagree_with_the_key_is_not_aggregated_and_the_run_says_why()
    {
        using var w = new Workspace();
        w.Store(AggregateTests.First());
        await w.RunAsync(AggregatorStage.Parse);
        w.Reconfigure("Aggregator:Anonymisation:Enabled", "true");

        var report = await w.Runner.RunAsync(AggregatorStage.Aggregate, TimeSpan.FromSeconds(5), CancellationToken.None);
        Assert.NotNull(report);
        Assert.False(report.Succeeded);
        Assert.Contains("2024-05-01: 1 files not anonymised while the key is", report.Error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(w.Lake.Dataset(LakeLayout.Flows)) && Directory.EnumerateFiles(w.Lake.Dataset(LakeLayout.Flows), "*.parquet", SearchOption.AllDirectories).Any());

        // Re-parsing (lake and ledger removed) makes the date consistent again.
        Directory.Delete(w.LakeDirectory, recursive: true);
        File.Delete(w.Ledger.Path);
        w.Restart();
        await w.RunAsync(AggregatorStage.Parse);
        await w.RunAsync(AggregatorStage.Aggregate);
        using var db = w.DuckDb();
        using var a = AnonymisationKey.FromOptions(w.Options)!;
        Assert.Equal(1L, Workspace.Scalar<long>(db, $"SELECT count(*) FROM read_parquet({Workspace.Q(Path.Combine(w.Lake.Dataset(LakeLayout.Addresses), "*", "*.parquet"))}) WHERE address = {Workspace.Q(a.Anonymise(Ipv6Address.Parse("2001:db8:1::1")).ToString())}"));
    }
}
