// ChorusWire
