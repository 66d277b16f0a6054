using System.Buffers.Binary;
using CsCheck;
using Survey6.Packets.Capture;
using Survey6.Packets.Dissection;
using static Survey6.Testing.FrameBuilder;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>Hostile input: every seed frame cut at every offset and randomly mutated must dissect without throwing.</summary>
public class DissectorRobustnessTests
{
    private static readonly LinkType[] LinkTypes = Enum.GetValues<LinkType>();

    private static byte[][] Seeds()
    {
        var ra = new byte[12 + 32];
        ra[12] = 3;
        ra[13] = 4;
        var quoted = Ipv6(17, Udp(1, 53, DnsQuery("a.b", 1)));
        var gre = new byte[] { 0x30, 0x01, 0x88, 0x0B, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0x03, 0x00, 0x57 };
        return
        [
            Ethernet(0x86DD, Ipv6(17, Udp(53, 4000, DnsAaaaResponse("www.example.com", 0, Source, Destination))), 0x0064),
            Ethernet(0x86DD, Ipv6(0, Extension(60, Extension(43, Fragment(6, Tcp(1, 53, 0x18, [0, 17, .. DnsQuery("x.y", 28)]), 0, true, 1), routingType: 4)))),
            Ethernet(0x86DD, Ipv6(58, Icmpv6(134, 0, ra))),
            Ethernet(0x86DD, Ipv6(58, Icmpv6(3, 0, [0, 0, 0, 0, .. quoted]))),
            Ethernet(0x0800, Ipv4(41, Ipv6(58, Icmpv6(135, 0, new byte[20])))),
            Ethernet(0x0800, Ipv4(17, Udp(3544, 3544, [0, 0, 1, 2, 3, 4, 5, 6, .. Ipv6(59, [])]))),
            Ethernet(0x0800, Ipv4(17, Udp(1701, 1701, [0, 2, 0, 1, 0, 1, 0xFF, 3, 0, 0x57, .. Ipv6(59, [])]))),
            Ethernet(0x0800, Ipv4(47, [.. gre, .. Ipv6(135, [59, 0, 5, 0, 0, 0, 0, 0])])),
            Ethernet(0x86DD, Ipv6(41, Ipv6(51, [6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, .. Tcp(1, 2, 2)]))),
        ];
    }

    private static void DissectAll(ReadOnlySpan<byte> frame)
    {
        var r = new PacketRecord();
        foreach (var linkType in LinkTypes)
        {
            r.Reset();
            r.FrameLength = (uint)frame.Length + 10;
            r.CapturedLength = (uint)frame.Length;
            PacketDissector.Dissect(frame, linkType, ref r);
            Assert.True(r.PathLength <= LayerPath.Capacity);
            Assert.True(r.ExtensionCount <= ExtensionChain.Capacity);
        }
    }

    [Fact]
    public void Every_prefix_of_every_seed_dissects()
    {
        foreach (var seed in Seeds())
        {
            for (int cut = 0; cut <= seed.Length; cut++)
            {
                DissectAll(seed.AsSpan(0, cut));
            }
        }
    }

    [Fact]
    public void A_cut_frame_never_reports_a_field_the_full_frame_lacks()
    {
        foreach (var seed in Seeds())
        {
            var full = new PacketRecord();
            full.Reset();
            PacketDissector.Dissect(seed, LinkType.Ethernet, ref full);
            for (int cut = 0; cut < seed.Length; cut++)
            {
                var part = new PacketRecord();
                part.Reset();
                PacketDissector.Dissect(seed.AsSpan(0, cut), LinkType.Ethernet, ref part);
                var extra = part.Present & ~full.Present;
                Assert.True(extra == FieldPresence.None, $"cut at {cut} added {extra}");
                if (part.Has(FieldPresence.Ipv6Source))
                {
                    Assert.Equal(full.Ipv6Source, part.Ipv6Source);
                }

                if (part.Has(FieldPresence.UdpSourcePort))
                {
                    Assert.Equal(full.UdpSourcePort, part.UdpSourcePort);
                }
            }
        }
    }

    [Fact]
    public void Random_mutations_of_real_frames_never_throw()
    {
        var seeds = Seeds();
        var mutation = Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Select(Gen.Int[0, 4096], Gen.Byte).Array[1, 12]);
        mutation.Sample(m =>
        {
            var (index, changes) = m;
            var frame = (byte[])seeds[index].Clone();
            foreach (var (position, value) in changes)
            {
                frame[position % frame.Length] = value;
            }

            DissectAll(frame);
        }, iter: 20_000);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        Gen.Byte.Array[0, 256].Sample(frame => DissectAll(frame), iter: 20_000);
    }

    [Fact]
    public void Random_length_fields_never_throw()
    {
        // Length fields are where parsers go wrong: hammer the ones a tunnel or extension header declares.
        var seeds = Seeds();
        Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[0, 200], Gen.UShort).Sample(m =>
        {
            var (index, position, value) = m;
            var frame = (byte[])seeds[index].Clone();
            int at = position % (frame.Length - 1);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(at), value);
            DissectAll(frame);
        }, iter: 20_000);
    }
}
