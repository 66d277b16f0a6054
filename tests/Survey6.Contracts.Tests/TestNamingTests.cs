using System.Text.RegularExpressions;

namespace Survey6.Contracts.Tests;

/// <summary>
/// The suite's one naming style: a test's name is the sentence it proves, words joined by underscores
/// (<c>Duplicate_is_acknowledged_without_storing_twice</c>), so a failure reads as the behaviour that broke.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed partial class TestNamingTests
{
    [Fact]
    public void Every_test_in_the_repository_is_named_as_a_sentence_with_underscores()
    {
        var tests = Path.Combine(TestData.RepositoryRoot, "tests");
        var seen = 0;
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(tests, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(tests, file);
            if (relative.Contains("/bin/", StringComparison.Ordinal) || relative.Contains("/obj/", StringComparison.Ordinal))
                continue;
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                if (!TestAttribute().IsMatch(lines[i]))
                    continue;
                // The method follows its attributes (InlineData, Trait, ...) within a few lines.
                var method = lines.Skip(i + 1).Take(40).Select(l => MethodName().Match(l)).FirstOrDefault(m => m.Success);
                if (method is null)
                    continue;
                seen++;
                var name = method.Groups["name"].Value;
                if (!name.Contains('_', StringComparison.Ordinal))
                    offenders.Add($"{relative}: {name}");
            }
        }

        Assert.True(seen > 500, $"only {seen} tests found under {tests}: the scan no longer finds them");
        Assert.True(offenders.Count == 0, "name these tests as sentences with underscores:\n" + string.Join("\n", offenders.Distinct()));
    }

    [GeneratedRegex(@"^\s*\[(Fact|Theory)\b")]
    private static partial Regex TestAttribute();

    [GeneratedRegex(@"^\s*public\s+(?:async\s+)?(?:Task|void|ValueTask)\s+(?<name>\w+)\s*\(")]
    private static partial Regex MethodName();
}
