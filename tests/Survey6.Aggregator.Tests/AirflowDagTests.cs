using System.Diagnostics;
using System.Text.Json;
using Survey6.Aggregator.Storage;
using Survey6.Aggregator.Tests.Support;
using Survey6.Cli;

namespace Survey6.Aggregator.Tests;

/// <summary>
/// deploy/airflow/survey6_dag.py: it compiles, and the commands of its tasks are ones the CLI accepts and that
/// build the lake when run in the DAG's order. Airflow itself is not installed here, so the DAG is loaded with a
/// minimal stand-in for the two Airflow names it imports, which records the tasks it is given.
/// </summary>
public class AirflowDagTests
{
    private static string DagPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "deploy", "airflow", "survey6_dag.py")))
            dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(dir.FullName, "deploy", "airflow", "survey6_dag.py");
    }

    private static (int Exit, string Output, string Error) Python(string arguments, string workingDirectory, Dictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("python3", arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // Keeps the bytecode out of the source tree.
        start.Environment["PYTHONPYCACHEPREFIX"] = Path.Combine(workingDirectory, "pycache");
        foreach (var (k, v) in environment ?? [])
            start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(60_000), "python3 did not finish");
        return (process.ExitCode, output.Result, error.Result);
    }

    private const string AirflowStandIn = """
        import json, shlex, sys, types

        tasks, edges, dags = [], [], []

        class DAG:
            def __init__(self, dag_id, **kwargs):
                self.dag_id, self.kwargs = dag_id, kwargs
                dags.append(self)
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False

        class BashOperator:
            def __init__(self, task_id, bash_command, **kwargs):
                self.task_id, self.bash_command = task_id, bash_command
                tasks.append(self)
            def __rshift__(self, other):
                edges.append([self.task_id, other.task_id])
                return other

        airflow = types.ModuleType("airflow"); airflow.DAG = DAG
        operators = types.ModuleType("airflow.operators")
        bash = types.ModuleType("airflow.operators.bash"); bash.BashOperator = BashOperator
        sys.modules.update({"airflow": airflow, "airflow.operators": operators, "airflow.operators.bash": bash})

        namespace = {"__name__": "survey6_dag"}
        exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"), namespace)
        d = dags[0]
        print(json.dumps({
            "dag_id": d.dag_id,
            "schedule": d.kwargs.get("schedule"),
            "retries": d.kwargs["default_args"]["retries"],
            "tasks": [{"id": t.task_id, "argv": shlex.split(t.bash_command)} for t in tasks],
            "edges": edges,
        }))
        """;

    [Fact]
    public async Task The_dag_compiles_and_its_tasks_run_the_three_stages_through_the_cli()
    {
        using var w = new Workspace();
        var dag = DagPath();
        var compiled = Python($"-m py_compile {dag}", w.Root);
        Assert.True(compiled.Exit == 0, compiled.Error);

        // A broken DAG is caught by the same check.
        var broken = Path.Combine(w.Root, "broken_dag.py");
        File.WriteAllText(broken, File.ReadAllText(dag).Replace("with DAG(", "with DAG((", StringComparison.Ordinal));
        Assert.NotEqual(0, Python($"-m py_compile {broken}", w.Root).Exit);

        var standIn = Path.Combine(w.Root, "load_dag.py");
        File.WriteAllText(standIn, AirflowStandIn);
        var loaded = Python($"{standIn} {dag}", w.Root, new() { ["SURVEY6_DATA_DIR"] = w.DataDirectory, ["SURVEY6_BIN"] = "/opt/survey6/bin/survey6" });
        Assert.True(loaded.Exit == 0, loaded.Error);
        using var json = JsonDocument.Parse(loaded.Output);
        var root = json.RootElement;
        Assert.Equal("survey6_aggregator", root.GetProperty("dag_id").GetString());
        Assert.True(root.GetProperty("retries").GetInt32() > 0);
        Assert.Equal(5, root.GetProperty("schedule").GetString()!.Split(' ').Length);
        var tasks = root.GetProperty("tasks").EnumerateArray()
            .Select(t => (Id: t.GetProperty("id").GetString()!, Argv: t.GetProperty("argv").EnumerateArray().Select(a => a.GetString()!).ToArray()))
            .ToList();
        Assert.Equal(["survey6_parse", "survey6_aggregate", "survey6_cleanup"], tasks.Select(t => t.Id));
        Assert.Equal([["survey6_parse", "survey6_aggregate"], ["survey6_aggregate", "survey6_cleanup"]],
            root.GetProperty("edges").EnumerateArray().Select(e => e.EnumerateArray().Select(x => x.GetString()!).ToArray()));

        // Each command is the survey6 binary with arguments the real CLI parses without error; a wrong stage would not.
        Assert.NotEmpty(RootCommandFactory.Create().Parse(["aggregate", "once", "--stage", "parsing"]).Errors);
        w.Store(AggregateTests.First());
        foreach (var (id, argv) in tasks)
        {
            Assert.Equal("/opt/survey6/bin/survey6", argv[0]);
            Assert.Equal(["aggregate", "once", "--stage", id["survey6_".Length..]], argv[1..5]);
            var parsed = RootCommandFactory.Create().Parse(argv[1..]);
            Assert.True(parsed.Errors.Count == 0, string.Join("; ", parsed.Errors.Select(e => e.Message)));
            Assert.Equal(0, await parsed.InvokeAsync());
        }
        Assert.True(w.Lake.HasPartition(LakeLayout.Flows, new DateOnly(2024, 5, 1)));
    }
}
