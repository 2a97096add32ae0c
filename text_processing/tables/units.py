"""The one unit table: symbol → (singular, plural), read after a number (the measure class).

Case matters ("MB" is not "mb", "L" is not "l"). ``STANDALONE`` lists the symbols that are read
even without a number before them ("speed in km/h"), because they are no ordinary word.
"""

from __future__ import annotations

UNITS: dict[str, tuple[str, str]] = {
    # length
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "µm": ("micrometer", "micrometers"),
    "nm": ("nanometer", "nanometers"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "in": ("inch", "inches"),
    "yd": ("yard", "yards"),
    # area and volume
    "m²": ("square meter", "square meters"),
    "m2": ("square meter", "square meters"),
    "km²": ("square kilometer", "square kilometers"),
    "km2": ("square kilometer", "square kilometers"),
    "cm²": ("square centimeter", "square centimeters"),
    "ft²": ("square foot", "square feet"),
    "sq ft": ("square foot", "square feet"),
    "m³": ("cubic meter", "cubic meters"),
    "m3": ("cubic meter", "cubic meters"),
    "cm³": ("cubic centimeter", "cubic centimeters"),
    "ha": ("hectare", "hectares"),
    "L": ("liter", "liters"),
    "l": ("liter", "liters"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "gal": ("gallon", "gallons"),
    # mass
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "µg": ("microgram", "micrograms"),
    "t": ("tonne", "tonnes"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    # speed
    "mph": ("mile per hour", "miles per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"),
    # temperature and angle
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "℃": ("degree Celsius", "degrees Celsius"),
    "℉": ("degree Fahrenheit", "degrees Fahrenheit"),
    "K": ("kelvin", "kelvins"),
    "°": ("degree", "degrees"),
    # time
    "ms": ("millisecond", "milliseconds"),
    "s": ("second", "seconds"),
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    # data, frequency, power, energy
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "W": ("watt", "watts"),
    "kW": ("kilowatt", "kilowatts"),
    "MW": ("megawatt", "megawatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "V": ("volt", "volts"),
    "mA": ("milliampere", "milliamperes"),
    "A": ("ampere", "amperes"),
    "kcal": ("kilocalorie", "kilocalories"),
    "cal": ("calorie", "calories"),
}
# Read even without a number before them: they are no word of their own.
STANDALONE = frozenset(
    {"km/h", "m/s", "mph", "kph", "°C", "°F", "℃", "℉", "m²", "km²", "m³", "kWh", "Mbps", "Gbps"}
)
# Symbols that follow a number without a space only ("5m", "3h", "10s"), never after a space,
# where they would be a word or a letter ("5 m" is fine, "in 5 s" too, but "I have 2 A grades").
TIGHT_ONLY = frozenset({"in", "t", "A", "V", "W", "K", "h", "s", "l"})
