using System.ComponentModel.DataAnnotations;

namespace Survey6.Server.Api;

/// <summary>The operator API's settings, section <c>Server:Api</c>.</summary>
public sealed class ApiOptions
{
    public const string SectionName = "Server:Api";

    /// <summary>Items per page when a list call gives no <c>limit</c>.</summary>
    [Range(1, 10_000)]
    public int DefaultPageSize { get; set; } = 100;

    /// <summary>The largest <c>limit</c> a list call may ask for.</summary>
    [Range(1, 10_000)]
    public int MaxPageSize { get; set; } = 1000;
}
