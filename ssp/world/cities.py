"""The metro areas users live in: coordinates, country, UTC offset and share of the population.

Offsets are fixed (the simulated world has no daylight saving time). ``country`` is ISO 3166-1
alpha-3, as OpenRTB's ``geo.country`` wants.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    lat: float
    lon: float
    #: Minutes from UTC (OpenRTB ``geo.utcoffset``).
    utcoffset: int
    #: Share of the population living here (normalised over all cities).
    share: float
    #: Browser language (ISO 639-1), sent as ``device.lang``.
    lang: str = "en"

    def geo(self) -> dict[str, object]:
        """The city's OpenRTB ``geo`` fields (without the jittered coordinates)."""
        return {"city": self.name, "country": self.country, "utcoffset": self.utcoffset}


CITIES: tuple[City, ...] = (
    City("New York", "USA", 40.7128, -74.0060, -300, 0.20),
    City("Los Angeles", "USA", 34.0522, -118.2437, -480, 0.12),
    City("Chicago", "USA", 41.8781, -87.6298, -360, 0.08),
    City("London", "GBR", 51.5074, -0.1278, 0, 0.14),
    City("Paris", "FRA", 48.8566, 2.3522, 60, 0.10, "fr"),
    City("Berlin", "DEU", 52.5200, 13.4050, 60, 0.08, "de"),
    City("Tokyo", "JPN", 35.6762, 139.6503, 540, 0.12, "ja"),
    City("São Paulo", "BRA", -23.5505, -46.6333, -180, 0.08, "pt"),
    City("Mumbai", "IND", 19.0760, 72.8777, 330, 0.04),
    City("Sydney", "AUS", -33.8688, 151.2093, 600, 0.04),
)
