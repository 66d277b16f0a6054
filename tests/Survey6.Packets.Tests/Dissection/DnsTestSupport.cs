using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace Survey6.Packets.Tests.Dissection;

/// <summary>Builds DNS messages byte by byte, so tests can say exactly what is on the wire.</summary>
internal sealed class DnsMessageBuilder
{
    private readonly List<byte> _bytes = [];

    public int Length => _bytes.Count;

    public DnsMessageBuilder Header(ushort id, ushort flags, int questions, int answers = 0, int authority = 0, int additional = 0) =>
        U16(id).U16(flags).U16(questions).U16(answers).U16(authority).U16(additional);

    public DnsMessageBuilder U16(int value)
    {
        _bytes.Add((byte)(value >> 8));
        _bytes.Add((byte)value);
        return this;
    }

    public DnsMessageBuilder U32(uint value) => U16((int)(value >> 16)).U16((int)(value & 0xFFFF));

    public DnsMessageBuilder Bytes(params byte[] bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    /// <summary>Labels given as Latin-1 text (each char one byte), then the root byte.</summary>
    public DnsMessageBuilder Name(params string[] labels) => Labels(labels.Select(l => Encoding.Latin1.GetBytes(l)).ToArray()).Bytes(0);

    public DnsMessageBuilder Labels(params byte[][] labels)
    {
        foreach (var label in labels)
        {
            _bytes.Add((byte)label.Length);
            _bytes.AddRange(label);
        }

        return this;
    }

    public DnsMessageBuilder Pointer(int offset) => U16(0xC000 | offset);

    public DnsMessageBuilder TypeClass(int type, int cls) => U16(type).U16(cls);

    /// <summary>Type, class, TTL, RDLENGTH and RDATA of a record whose name was just written.</summary>
    public DnsMessageBuilder Record(int type, int cls, byte[] rdata, uint ttl = 300) =>
        U16(type).U16(cls).U32(ttl).U16(rdata.Length).Bytes(rdata);

    public byte[] ToArray() => [.. _bytes];
}

/// <summary>Writes hand-made messages into a pcap and reads fields back with tshark.</summary>
internal static class Tshark
{
    private static readonly Lazy<(string Path, string Version)?> Located = new(Locate);

    /// <summary>The tshark executable; fails the calling test when it is not installed.</summary>
    public static string RequirePath()
    {
        var found = Located.Value;
        if (found is null)
        {
            Assert.Fail("tshark was not found (looked at $TSHARK and on PATH). These tests compare against tshark 4.0.x: install it (Debian: apt-get install tshark) or set TSHARK to its path.");
        }

        return found.Value.Path;
    }

    public static string Version => Located.Value?.Version ?? "missing";

    /// <summary>One UDP/IPv6 packet per message, LINKTYPE_RAW, ports as given, UDP checksum left zero.</summary>
    public static void WritePcap(string path, IEnumerable<(ushort Src, ushort Dst, byte[] Message)> packets)
    {
        using var stream = File.Create(path);
        Span<byte> header = stackalloc byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xA1B2C3D4);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], 262144);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], 101);
        stream.Write(header);
        Span<byte> record = stackalloc byte[16];
        int index = 0;
        foreach (var (src, dst, message) in packets)
        {
            var udpLength = 8 + message.Length;
            var packet = new byte[40 + udpLength];
            packet[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), (ushort)udpLength);
            packet[6] = 17;
            packet[7] = 64;
            // A distinct source address per packet keeps tshark's conversation tracking from linking packets.
            BinaryPrimitives.WriteInt32BigEndian(packet.AsSpan(20), ++index);
            packet[39] = 2;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(40), src);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(42), dst);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(44), (ushort)udpLength);
            message.CopyTo(packet, 48);
            BinaryPrimitives.WriteUInt32LittleEndian(record[8..], (uint)packet.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(record[12..], (uint)packet.Length);
            stream.Write(record);
            stream.Write(packet);
        }
    }

    /// <summary>Runs tshark -T fields over the messages (as DNS on port 53) and returns one row per packet.</summary>
    public static string[][] Fields(IReadOnlyList<byte[]> messages, string occurrence, params string[] fields) =>
        Fields(messages.Select(m => ((ushort)53, (ushort)40000, m)).ToList(), occurrence, fields);

    public static string[][] Fields(IReadOnlyList<(ushort Src, ushort Dst, byte[] Message)> packets, string occurrence, params string[] fields) =>
        Fields(packets, [], occurrence, fields);

    public static string[][] Fields(IReadOnlyList<(ushort Src, ushort Dst, byte[] Message)> packets, string[] options, string occurrence, params string[] fields)
    {
        var exe = RequirePath();
        var pcap = Path.Combine(Path.GetTempPath(), $"survey6-dns-{Guid.NewGuid():N}.pcap");
        try
        {
            WritePcap(pcap, packets);
            var start = new ProcessStartInfo(exe)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { "-n", "-r", pcap, "-T", "fields", "-E", "occurrence=" + occurrence })
            {
                start.ArgumentList.Add(arg);
            }

            foreach (var option in options)
            {
                start.ArgumentList.Add(option);
            }

            foreach (var field in fields)
            {
                start.ArgumentList.Add("-e");
                start.ArgumentList.Add(field);
            }

            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"tshark failed ({process.ExitCode}): {stderr.Result}");
            var lines = output.Split('\n');
            Assert.True(lines.Length >= packets.Count, $"tshark printed {lines.Length} lines for {packets.Count} packets");
            return lines.Take(packets.Count).Select(l => l.Split('\t')).ToArray();
        }
        finally
        {
            File.Delete(pcap);
        }
    }

    private static (string, string)? Locate()
    {
        var candidates = new List<string>();
        var fromEnv = Environment.GetEnvironmentVariable("TSHARK");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            candidates.Add(fromEnv);
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            candidates.Add(Path.Combine(dir, OperatingSystem.IsWindows() ? "tshark.exe" : "tshark"));
        }

        foreach (var candidate in candidates.Where(File.Exists))
        {
            try
            {
                using var process = Process.Start(new ProcessStartInfo(candidate, "--version")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                })!;
                var firstLine = process.StandardOutput.ReadLine() ?? "";
                process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                return (candidate, firstLine);
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Not runnable; keep looking.
            }
        }

        return null;
    }
}
