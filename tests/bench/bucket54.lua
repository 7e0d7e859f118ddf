-- bucket54.lua -- bucket(s) for Lua 5.4: splitmix64(fnv1a64(s)) % 100 with
-- the 64-bit integers Lua 5.4 has (wrapping *, logical >>, hex literals
-- that wrap). The unsigned % 100 is 4 * ((h >> 2) % 25) + (h & 3).
local byte = string.byte
return function(s)
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ byte(s, i)) * 0x100000001b3 end
  h = h + 0x9e3779b97f4a7c15
  h = (h ~ (h >> 30)) * 0xbf58476d1ce4e5b9
  h = (h ~ (h >> 27)) * 0x94d049bb133111eb
  h = h ~ (h >> 31)
  return ((h >> 2) % 25) * 4 + (h & 3)
end
