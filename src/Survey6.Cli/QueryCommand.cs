using System.Collections;
using System.CommandLine;
using System.Data.Common;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Survey6.Aggregator;
using Survey6.Aggregator.Query;

namespace Survey6.Cli;

/// <summary><c>survey6 query "SQL"</c>: DuckDB SQL over the lake, every dataset a view.</summary>
public static class QueryCommand
{
    public static Command Create()
    {
        var sql = new Argument<string>("SQL") { Description = "A DuckDB query; the datasets (packets, captures, flows, connections, addresses, prefixes, dns, icmpv6, icmpv6_routers, summary) are views" };
        var format = new Option<string>("--format") { Description = "Output format", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "csv", "jsonl");
        var lake = AggregateCommands.LakeOption();
        var dataDir = AggregateCommands.DataDirOption();
        var config = AggregateCommands.ConfigOption();
        var command = new Command("query", "Run SQL over the Parquet lake") { sql, format, lake, dataDir, config };
        command.SetAction(parse => Run(parse.GetValue(sql)!, parse.GetValue(format)!, parse.GetValue(lake), parse.GetValue(dataDir), Console.Out, Console.Error, parse.GetValue(config)));
        return command;
    }

    public static int Run(string sql, string format, string? lakeDir, string? dataDir, TextWriter output, TextWriter error, string? configFile = null)
    {
        ArgumentNullException.ThrowIfNull(error);
        if (string.IsNullOrWhiteSpace(sql))
        {
            error.WriteLine("survey6 query: the SQL is empty; give a query, e.g. survey6 query \"SELECT count(*) FROM captures\"");
            return ExitCodes.Usage;
        }

        string lakeRoot;
        using (var host = AggregatorHosting.Build(dataDir, lakeDir, includeOpen: false, scheduled: false, LogLevel.Warning, configFile: configFile))
            lakeRoot = host.Services.GetRequiredService<IOptions<AggregatorOptions>>().Value.Layout.Lake;

        IReadOnlyList<string> queried = [];
        var tracked = new WriteTracker(output);
        try
        {
            // A read the aggregator's partition swap cut short is asked again, but only while nothing was printed.
            LakeQuery.Read(lakeRoot, (connection, views) =>
            {
                queried = views;
                using var command = connection.CreateCommand();
                command.CommandText = sql;
                using var reader = command.ExecuteReader();
                switch (format)
                {
                    case "csv":
                        WriteCsv(reader, tracked);
                        break;
                    case "jsonl":
                        WriteJsonLines(reader, tracked);
                        break;
                    default:
                        WriteTable(reader, tracked);
                        break;
                }
                return true;
            }, mayRetry: () => !tracked.Wrote);
            tracked.Flush();
            return 0;
        }
        catch (DbException e)
        {
            return Report(e, lakeRoot, queried, error);
        }
    }

    private static int Report(DbException e, string lakeRoot, IReadOnlyList<string> queried, TextWriter error)
    {
        // A dataset with no files yet has no view: say that, not DuckDB's "did you mean pg_class".
        var missing = System.Text.RegularExpressions.Regex.Match(e.Message, "Table with name ([A-Za-z0-9_]+) does not exist");
        if (missing.Success && Survey6.Aggregator.Storage.LakeLayout.AllDatasets.Contains(missing.Groups[1].Value, StringComparer.OrdinalIgnoreCase))
        {
            error.WriteLine($"survey6 query: the dataset {missing.Groups[1].Value} has no data yet in {lakeRoot} " +
                $"(datasets with data: {(queried.Count == 0 ? "none" : string.Join(", ", queried))}; `survey6 aggregate status` shows what was aggregated)");
            return ExitCodes.NotFound;
        }

        if (missing.Success)
        {
            error.WriteLine($"survey6 query: no dataset {missing.Groups[1].Value}; the datasets are {string.Join(", ", Survey6.Aggregator.Storage.LakeLayout.AllDatasets)}");
            return ExitCodes.NotFound;
        }

        error.WriteLine("survey6 query: " + e.Message.ReplaceLineEndings(" "));
        return ExitCodes.Usage;
    }

    /// <summary>Passes text through and remembers whether any was written, so a failed query is retried only before it printed.</summary>
    private sealed class WriteTracker(TextWriter inner) : TextWriter
    {
        public bool Wrote { get; private set; }

        public override System.Text.Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            Wrote = true;
            inner.Write(value);
        }

        public override void Write(string? value)
        {
            Wrote |= !string.IsNullOrEmpty(value);
            inner.Write(value);
        }

        public override void WriteLine(string? value)
        {
            Wrote = true;
            inner.WriteLine(value);
        }

        public override void Flush() => inner.Flush();
    }

    private static void WriteCsv(DbDataReader reader, TextWriter output)
    {
        output.WriteLine(string.Join(',', Enumerable.Range(0, reader.FieldCount).Select(i => Csv(reader.GetName(i)))));
        while (reader.Read())
            output.WriteLine(string.Join(',', Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "" : Csv(Text(Value(reader, i))))));
    }

    private static string Csv(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;

    private static void WriteJsonLines(DbDataReader reader, TextWriter output)
    {
        var buffer = new MemoryStream();
        while (reader.Read())
        {
            buffer.SetLength(0);
            using (var json = new Utf8JsonWriter(buffer))
            {
                json.WriteStartObject();
                for (int i = 0; i < reader.FieldCount; i++)
                {
                    json.WritePropertyName(reader.GetName(i));
                    WriteJson(json, reader.IsDBNull(i) ? null : Value(reader, i));
                }
                json.WriteEndObject();
            }
            output.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        }
    }

    private static void WriteTable(DbDataReader reader, TextWriter output)
    {
        var names = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToArray();
        var rows = new List<string[]>();
        while (reader.Read())
            rows.Add(Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Text(Value(reader, i))).ToArray());
        var widths = names.Select((n, i) => Math.Max(n.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        output.WriteLine(string.Join(" | ", names.Select((n, i) => n.PadRight(widths[i]))).TrimEnd());
        output.WriteLine(string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var row in rows)
            output.WriteLine(string.Join(" | ", row.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
        output.WriteLine($"({rows.Count} row{(rows.Count == 1 ? "" : "s")})");
    }

    /// <summary>
    /// A column's value; a TIMESTAMPTZ (the lake's times) comes from DuckDB as a DateTime of the UTC instant and is
    /// shown as one, with its zero offset, so that it reads apart from a plain TIMESTAMP.
    /// </summary>
    private static object Value(DbDataReader reader, int i)
    {
        var value = reader.GetValue(i);
        return value is DateTime t && string.Equals(reader.GetDataTypeName(i), "TimestampTz", StringComparison.OrdinalIgnoreCase)
            ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc))
            : value;
    }

    /// <summary>Scalars as invariant text; lists and maps as JSON.</summary>
    private static string Text(object value) => value switch
    {
        string s => s,
        DateTime t => t.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        DateTimeOffset t => t.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFFzzz", CultureInfo.InvariantCulture),
        IFormattable f when value is not IEnumerable => f.ToString(null, CultureInfo.InvariantCulture),
        byte[] b => "\\x" + Convert.ToHexString(b),
        _ => JsonText(value),
    };

    private static string JsonText(object value)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
            WriteJson(json, value);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteJson(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null or DBNull:
                json.WriteNullValue();
                break;
            case string s:
                json.WriteStringValue(s);
                break;
            case bool b:
                json.WriteBooleanValue(b);
                break;
            case DateTime t:
                json.WriteStringValue(t.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture));
                break;
            case DateOnly d:
                json.WriteStringValue(d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                break;
            case DateTimeOffset t:
                json.WriteStringValue(t.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz", CultureInfo.InvariantCulture));
                break;
            case byte[] bytes:
                json.WriteStringValue(Convert.ToHexString(bytes));
                break;
            case BigInteger or decimal or double or float or long or ulong or int or uint or short or ushort or byte or sbyte:
                json.WriteRawValue(((IFormattable)value).ToString(null, CultureInfo.InvariantCulture));
                break;
            case IDictionary map:
                json.WriteStartObject();
                foreach (DictionaryEntry entry in map)
                {
                    json.WritePropertyName(Text(entry.Key));
                    WriteJson(json, entry.Value);
                }
                json.WriteEndObject();
                break;
            case IEnumerable list:
                json.WriteStartArray();
                foreach (var item in list)
                    WriteJson(json, item);
                json.WriteEndArray();
                break;
            default:
                json.WriteStringValue(Text(value));
                break;
        }
    }
}
