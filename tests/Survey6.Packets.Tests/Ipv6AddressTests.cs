using CsCheck;
using Survey6.Packets.Addresses;

namespace Survey6.Packets.Tests;

public class Ipv6AddressTests
{
    [Theory]
    [InlineData("::")]
    [InlineData("::1")]
    [InlineData("1::")]
    [InlineData("2001:db8::1")]
    [InlineData("2001:db8:0:1:1:1:1:1")]
    [InlineData("2001:0:0:1::1")]
    [InlineData("fe80::2e0:81ff:fe52:ffff")]
    [InlineData("2001:db8::1:0:0:1")]
    public void Format_matches_rfc5952(string text)
    {
        var address = Ipv6Address.Parse(text);
        Assert.Equal(System.Net.IPAddress.Parse(text).ToString(), address.ToString());
    }

    // What tshark 4.0.17 prints for these addresses (ipv6.src of hand-made frames).
    [Theory]
    [InlineData("::ffff:1.2.3.4", "::ffff:1.2.3.4")]
    [InlineData("::1.2.3.4", "::1.2.3.4")]
    [InlineData("::0.0.1.2", "::102")]
    [InlineData("::1", "::1")]
    [InlineData("::ffff:0.0.0.0", "::ffff:0.0.0.0")]
    [InlineData("::1:0:0", "::1:0:0")]
    [InlineData("::d:0", "::0.13.0.0")]
    [InlineData("::ffff:0:a:d", "::ffff:0:a:d")]
    public void Embedded_ipv4_is_written_as_tshark_writes_it(string input, string tshark)
    {
        Assert.Equal(tshark, Ipv6Address.Parse(input).ToString());
    }

    [Fact]
    public void Read_and_write_round_trip()
    {
        var bytes = Enumerable.Range(0, 16).Select(i => (byte)(i * 17)).ToArray();
        var address = Ipv6Address.Read(bytes);
        var back = new byte[16];
        address.Write(back);
        Assert.Equal(bytes, back);
        Assert.Equal(bytes[9], address[9]);
        Assert.Equal((ushort)((bytes[4] << 8) | bytes[5]), address.Hextet(2));
    }

    [Fact]
    public void Format_agrees_with_the_framework_for_random_addresses()
    {
        // Zero hextets are common in real addresses, so draw each hextet from a mix biased towards 0.
        var hextet = Gen.Frequency((3, Gen.Const((ushort)0)), (1, Gen.UShort[1, 0xF]), (2, Gen.UShort));
        hextet.Array[8].Sample(h =>
        {
            var bytes = new byte[16];
            for (int i = 0; i < 8; i++)
            {
                bytes[2 * i] = (byte)(h[i] >> 8);
                bytes[(2 * i) + 1] = (byte)h[i];
            }

            // Embedded-IPv4 forms follow Wireshark's rule (tested below), which .NET does not share.
            if (h[0] == 0 && h[1] == 0 && h[2] == 0 && h[3] == 0 && h[4] == 0 && (h[5] == 0 || h[5] == 0xFFFF))
            {
                return;
            }

            // .NET also prints an IPv4-translated address (::ffff:0:a.b.c.d, RFC 2765) with a dotted IPv4; Wireshark,
            // like BIND's inet_ntop, keeps dotted form for the compatible and mapped prefixes only.
            if (h[0] == 0 && h[1] == 0 && h[2] == 0 && h[3] == 0 && h[4] == 0xFFFF && h[5] == 0)
            {
                return;
            }

            // .NET also prints an ISATAP interface id (0:5efe or 200:5efe) with a dotted IPv4; Wireshark does not.
            if (h[5] == 0x5EFE && (h[4] == 0 || h[4] == 0x200))
            {
                return;
            }

            var expected = new System.Net.IPAddress(bytes).ToString();
            Assert.Equal(expected, Ipv6Address.Read(bytes).ToString());
        }, iter: 20_000);
    }
}
