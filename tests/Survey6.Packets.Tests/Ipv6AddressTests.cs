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
}
