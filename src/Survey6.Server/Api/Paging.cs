using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Survey6.Server.Api;

/// <summary>
/// Where a page starts and how long it is. Lists are keyset-paged: the cursor names the last item
/// of the previous page, so pages stay consistent while new items arrive. Each query decodes its
/// own cursors and throws <see cref="InvalidCursorException"/> for one it did not make.
/// </summary>
public sealed record PageRequest(int Limit, string? Cursor)
{
    /// <summary>The first page of up to <paramref name="limit"/> items.</summary>
    public static PageRequest First(int limit) => new(limit, null);
}

public sealed class InvalidCursorException : Exception
{
    public InvalidCursorException()
        : base("cursor is not one this list returned")
    {
    }

    public InvalidCursorException(string message)
        : base(message)
    {
    }

    public InvalidCursorException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Opaque cursors: the key of the last item, base64url-encoded so clients treat it as a token.</summary>
public static class PageCursor
{
    private const char Separator = '\u001f';

    public static string Encode(params string[] key) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes("1" + Separator + string.Join(Separator, key)));

    public static string Encode(long id) => Encode(id.ToString(CultureInfo.InvariantCulture));

    /// <summary>The key in <paramref name="cursor"/>, which must have <paramref name="parts"/> parts; null for no cursor.</summary>
    public static IReadOnlyList<string>? Decode(string? cursor, int parts) =>
        cursor is null ? null : TryDecode(cursor, parts) ?? throw new InvalidCursorException();

    /// <summary>The id in a cursor made by <see cref="Encode(long)"/>; null for no cursor.</summary>
    public static long? DecodeId(string? cursor) =>
        Decode(cursor, 1) is not { } key ? null
        : long.TryParse(key[0], NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id
        : throw new InvalidCursorException();

    private static string[]? TryDecode(string cursor, int parts)
    {
        if (cursor.Length > 1024)
            return null;
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(cursor);
        }
        catch (FormatException)
        {
            return null;
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }

        var split = text.Split(Separator);
        return split.Length == parts + 1 && split[0] == "1" ? split[1..] : null;
    }

    /// <summary>A page of <paramref name="rows"/> fetched with one row more than the limit, to know whether another page follows.</summary>
    public static Page<T> Make<T>(List<T> rows, int limit, Func<T, string> cursorOf)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(cursorOf);
        if (rows.Count <= limit)
            return new Page<T>(rows, null);
        rows.RemoveRange(limit, rows.Count - limit);
        return new Page<T>(rows, cursorOf(rows[^1]));
    }
}
