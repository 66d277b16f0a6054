using Survey6.Server.Repository;
using Survey6.Testing;

namespace Survey6.Deploy.Tests;

/// <summary>DebianVersion orders versions exactly as dpkg --compare-versions does.</summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class DebianVersionTests
{
    public static TheoryData<string, string> Pairs => new()
    {
        { "0.9.1", "0.9.2" }, { "0.9.10", "0.9.9" }, { "1.0", "1.0.0" }, { "1.0~rc1", "1.0" }, { "1.0~~", "1.0~" },
        { "1.0-1", "1.0-2" }, { "1.0-10", "1.0-9" }, { "1:0.1", "2.0" }, { "0:1.0", "1.0" }, { "1.0a", "1.0" },
        { "1.0+b1", "1.0" }, { "1.0.a", "1.0+" }, { "2.0-1~bpo12+1", "2.0-1" }, { "1.01", "1.1" }, { "1.2.3", "1.2.3" },
        { "0.1.0+20261128", "0.1.0+20261127.9" }, { "10", "9" }, { "1.0-0", "1.0" }, { "1.0+dfsg-1", "1.0-1" }, { "1.0.0~alpha", "1.0.0~beta" },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Orders_like_dpkg(string left, string right)
    {
        var expected = Tool.Run("dpkg", "--compare-versions", left, "lt", right).ExitCode == 0 ? -1
            : Tool.Run("dpkg", "--compare-versions", left, "eq", right).ExitCode == 0 ? 0 : 1;
        Assert.Equal(expected, Math.Sign(DebianVersion.Compare(left, right)));
        Assert.Equal(-expected, Math.Sign(DebianVersion.Compare(right, left)));
    }
}
