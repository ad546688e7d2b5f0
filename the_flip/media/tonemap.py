"""HDR (HLG, PQ, Dolby Vision with an HLG/PQ base layer) -> SDR BT.709 filter chains."""

from __future__ import annotations

from .probe import VideoStream

_TIN = {"hlg": "arib-std-b67", "pq": "smpte2084"}
_MIN = {"bt2020nc": "2020_ncl", "bt2020c": "2020_cl", "bt709": "709"}


def hdr_filter(v: VideoStream, width: int, height: int, transfer: str) -> str:
    """Scale first (at 10 bit, cheaper when the output is smaller), then tone-map.

    Same maths as Immich/Jellyfin: linearise (npl=100), BT.2020 -> BT.709
    primaries in float RGB, Hable curve without desaturation, BT.709 transfer.
    """
    matrix = _MIN.get(v.color_space, "2020_ncl")
    rng = "full" if v.color_range == "pc" else "limited"
    return (
        f"zscale=w={width}:h={height}:f=bilinear"
        f":tin={_TIN[transfer]}:pin=2020:min={matrix}:rin={rng}"
        f":t=linear:npl=100,format=gbrpf32le,zscale=p=709,"
        f"tonemap=hable:desat=0,zscale=t=709:m=709:r=limited,format=yuv420p,setsar=1"
    )
