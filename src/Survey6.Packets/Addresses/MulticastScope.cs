namespace Survey6.Packets.Addresses;

/// <summary>
/// Multicast scope: the numeric value is the 4-bit scope field (RFC 4291 2.7, RFC 7346), so values that are
/// unassigned (6, 7, 9-13) survive a cast even though they have no name. <see cref="None"/> marks non-multicast.
/// </summary>
public enum MulticastScope : byte
{
    Reserved0 = 0x0,
    InterfaceLocal = 0x1,
    LinkLocal = 0x2,
    RealmLocal = 0x3,
    AdminLocal = 0x4,
    SiteLocal = 0x5,
    OrganizationLocal = 0x8,
    Global = 0xE,
    ReservedF = 0xF,

    /// <summary>Not a multicast address; outside the 4-bit range so it cannot collide with a real scope.</summary>
    None = 0xFF,
}
