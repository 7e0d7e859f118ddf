-- bucketjit.lua -- bucket(s) for LuaJIT: splitmix64(fnv1a64(s)) % 100 in
-- FFI uint64_t arithmetic (LuaJIT numbers are doubles) and the bit
-- library's 64-bit operations.
local bit = require("bit")
local bxor, rshift, byte = bit.bxor, bit.rshift, string.byte
return function(s)
  local h = 0xcbf29ce484222325ULL
  for i = 1, #s do h = bxor(h, byte(s, i)) * 0x100000001b3ULL end
  h = h + 0x9e3779b97f4a7c15ULL
  h = bxor(h, rshift(h, 30)) * 0xbf58476d1ce4e5b9ULL
  h = bxor(h, rshift(h, 27)) * 0x94d049bb133111ebULL
  h = bxor(h, rshift(h, 31))
  return tonumber(h % 100ULL)
end
