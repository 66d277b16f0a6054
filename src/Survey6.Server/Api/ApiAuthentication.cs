using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Survey6.Server.Api;

/// <summary>Names shared by the API's authentication and authorization.</summary>
public static class ApiAuthentication
{
    /// <summary>The bearer API token scheme.</summary>
    public const string Scheme = "ApiToken";

    /// <summary>
    /// The scheme the web UI's cookie login registers (<c>AddCookie()</c>'s default name). When a
    /// scheme of this name exists, <see cref="Policy"/> accepts it as well as a bearer token.
    /// </summary>
    public const string CookieScheme = "Cookies";

    /// <summary>The authorization policy every /api/v1 endpoint (and /metrics when it requires a token) uses.</summary>
    public const string Policy = "Survey6Api";

    /// <summary>
    /// The request header that carries the web UI's antiforgery token: a write (POST, PUT, PATCH, DELETE) to /api/v1
    /// authenticated by the session cookie alone needs it. A cross-site page cannot set it on a request the browser
    /// sends with the cookie, nor read the token.
    /// </summary>
    public const string AntiforgeryHeader = "X-Survey6-Antiforgery";

    /// <summary>Claim holding the API token's id, for audit records.</summary>
    public const string TokenIdClaim = "survey6:api_token_id";

    /// <summary>HttpContext.Items key under which the handler leaves why a presented token was refused.</summary>
    internal const string RefusalItem = "survey6:api_token_refusal";

    /// <summary>Who made an API call, for events: the token's name and id, or the cookie user's name.</summary>
    public static string Actor(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var name = user.Identity?.Name;
        var tokenId = user.FindFirst(TokenIdClaim)?.Value;
        return tokenId is null ? "user " + (name ?? "unknown")
            : string.IsNullOrEmpty(name) ? "api-token " + tokenId
            : $"api-token {tokenId} ({name})";
    }
}

public sealed class ApiTokenAuthenticationOptions : AuthenticationSchemeOptions;

/// <summary>
/// <c>Authorization: Bearer s6_ID_SECRET</c> against <see cref="ApiTokenStore"/>. No header, or
/// another scheme, is "no result" (so a cookie scheme can still authenticate the request); a
/// bearer token that is not a good API token fails authentication with its reason.
/// </summary>
internal sealed class ApiTokenAuthenticationHandler(
    IOptionsMonitor<ApiTokenAuthenticationOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiTokenStore tokens) : AuthenticationHandler<ApiTokenAuthenticationOptions>(options, logger, encoder)
{
    private const string BearerPrefix = "Bearer ";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers[HeaderNames.Authorization];
        if (header is null || !header.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase))
            return Task.FromResult(AuthenticateResult.NoResult());

        var (refusal, token) = tokens.Authenticate(header[BearerPrefix.Length..].Trim());
        if (refusal != ApiTokenRefusal.None)
        {
            Context.Items[ApiAuthentication.RefusalItem] = refusal;
            return Task.FromResult(AuthenticateResult.Fail(refusal.Message()));
        }

        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, "api-token:" + token!.Id),
                new Claim(ClaimTypes.Name, token.Name),
                new Claim(ApiAuthentication.TokenIdClaim, token.Id),
            ],
            ApiAuthentication.Scheme);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), ApiAuthentication.Scheme)));
    }
}
