using System.Reflection;
using Survey6.Server.Hosting;
using Survey6.Testing;

namespace Survey6.Server.Tests;

/// <summary>
/// The C&amp;C server does not carry the aggregator: the data page's ledger and lake readers are the aggregator's, and
/// the hosting program registers them (docs/architecture.md, "Projects"). Checked on the built assemblies, so a
/// project reference or a type that brings the aggregator or DuckDB back fails here.
/// </summary>
[Trait(TestCategory.Name, TestCategory.Unit)]
public sealed class ServerAssemblyTests
{
    private static readonly string[] Forbidden = ["Survey6.Aggregator", "DuckDB.NET.Data", "DuckDB.NET.Bindings", "Parquet", "Quartz"];

    [Fact]
    public void The_server_assembly_references_neither_the_aggregator_nor_DuckDB()
    {
        var server = typeof(ServerApplication).Assembly;
        Assert.Equal("Survey6.Server", server.GetName().Name);
        var references = server.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        // The list is real: the server's own libraries are there.
        Assert.Contains("Survey6.Data", references);
        Assert.Contains("Survey6.Server.Storage", references);
        Assert.DoesNotContain(references, r => Forbidden.Any(f => r.StartsWith(f, StringComparison.Ordinal)));
    }

    [Fact]
    public void Nor_does_any_survey6_library_the_server_depends_on()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<Assembly>([typeof(ServerApplication).Assembly]);
        var paths = new List<string>();
        while (pending.TryDequeue(out var assembly))
        {
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                var name = reference.Name!;
                Assert.False(Forbidden.Any(f => name.StartsWith(f, StringComparison.Ordinal)), $"{assembly.GetName().Name} references {name}");
                if (name.StartsWith("Survey6.", StringComparison.Ordinal) && seen.Add(name))
                {
                    paths.Add(name);
                    pending.Enqueue(Assembly.Load(reference));
                }
            }
        }

        Assert.Contains("Survey6.Data", paths);
        Assert.Contains("Survey6.Packets", paths);
    }
}
