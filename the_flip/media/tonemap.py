"""HDR (HLG, PQ, Dolby Vision with an HLG/PQ base layer) -> SDR BT.709.

The curve is ffmpeg's ``tonemap=mobius:param=0.5:desat=0`` on light normalised to
100 nits (``zscale=t=linear:npl=100``), measured closest to the SDR picture among
hable/reinhard/mobius (Immich's hable leaves an HLG iPhone clip ~30 % too dark).

The float chain ``zscale -> gbrpf32le -> zscale -> tonemap -> zscale`` costs ~8
CPU-seconds per 10 s of 1080p on this machine, more than x264 leaves spare. So the
same maths is split into pieces that are cheap:

1. one ``zscale`` pass does the scaling (at 10 bit, before anything else, so a
   downscaled output tone-maps fewer pixels), the HLG/PQ decode, the BT.2020 ->
   BT.709 primaries conversion in linear light and re-encodes the result as PQ in
   12-bit planar RGB. PQ is absolute (nits) and perceptually uniform, so 12 bits
   carry it without banding and nothing above SDR white is clipped yet;
2. ``lutrgb`` applies, per channel through a 4096-entry table, PQ -> nits -> mobius
   curve -> BT.709 OETF (the table is computed once per run from an expression);
3. swscale converts the 4:4:4 RGB to 4:2:0 BT.709 limited range.

The curve is applied per channel instead of on max(R,G,B), so extreme highlights
desaturate slightly towards white (as film does); below ~50 nits it is exact.
"""

from __future__ import annotations

from .probe import VideoStream

_TIN = {"hlg": "arib-std-b67", "pq": "smpte2084"}
_MIN = {"bt2020nc": "2020_ncl", "bt2020c": "2020_cl", "bt709": "709"}
# Signal peak relative to 100 nits when the stream carries no metadata (ffmpeg's defaults).
PEAK = {"hlg": 10.0, "pq": 100.0}
MOBIUS_KNEE = 0.5
# SMPTE ST 2084 constants
_M1, _M2 = 0.1593017578125, 78.84375
_C1, _C2, _C3 = 0.8359375, 18.8515625, 18.6875


def curve_expression(peak: float, knee: float = MOBIUS_KNEE) -> str:
    """lutrgb expression: PQ code value -> SDR BT.709 code value (0..maxval)."""
    j = knee
    a = -j * j * (peak - 1) / (j * j - 2 * j + peak)
    b = (j * j - 2 * j * peak + peak) / (peak - 1)
    k = (b * b + 2 * b * j + j * j) / (b - a)
    e = f"pow(val/maxval\\,{1 / _M2!r})"
    # PQ EOTF gives nits/10000; the curve wants light relative to 100 nits: x100
    sig = f"100*pow(max({e}-{_C1}\\,0)/({_C2}-{_C3}*{e})\\,{1 / _M1!r})"
    mobius = f"min(if(lte(st(0\\,{sig})\\,{j})\\,ld(0)\\,{k!r}*(ld(0)+{a!r})/(ld(0)+{b!r}))\\,1)"
    oetf = f"if(lt(st(1\\,{mobius})\\,0.018)\\,4.5*ld(1)\\,1.099*pow(ld(1)\\,0.45)-0.099)"
    return f"maxval*{oetf}"


def hdr_filter(v: VideoStream, width: int, height: int, transfer: str) -> str:
    matrix = _MIN.get(v.color_space, "2020_ncl")
    rng = "full" if v.color_range == "pc" else "limited"
    expr = curve_expression(PEAK[transfer])
    return (
        f"zscale=w={width}:h={height}:f=bilinear"
        f":tin={_TIN[transfer]}:pin=2020:min={matrix}:rin={rng}"
        f":t=smpte2084:p=709:npl=100,format=gbrp12le,"
        f"lutrgb=r={expr}:g={expr}:b={expr},"
        f"scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,setsar=1"
    )
