-- policy.lua -- reference.lane's route `ref` in Lua, for Lua 5.4 and
-- LuaJIT embedded through their C APIs (lua_impl.c).
--
-- Called once as a chunk with (models, state, bucket): models is an array
-- of tables (name, prices, limits, capability booleans, quality, live p95,
-- healthy, idx = 0-based catalog index), state = { spent = {tenant = $},
-- limit = 200 }, bucket a function of a string giving 0..99
-- (bucket54.lua or bucketjit.lua). Returns decide(task, tier, tenant,
-- user, input_tokens, max_output_tokens, images, tools, json,
-- latency_ms) -> rule, n, c1, c2, c3, cost.
--
-- Written as a performance-minded Lua programmer would: pools resolved
-- once, no table created per decision (candidates and the top-3 buffer
-- are reused upvalues), the same tie-breaking and cost formula as lane.
local models, state, bucket = ...
local INF = math.huge
local spent, limit = state.spent, state.limit

local CHEAPEST, FASTEST, BEST = 1, 2, 3
local F_NONE, F_P95, F_COST = 0, 1, 2

local function where(pred)
  local p = {}
  for i = 1, #models do
    local m = models[i]
    if m.quality > 0 and pred(m) then p[#p + 1] = m end
  end
  return p
end
local rated     = where(function(m) return true end)
local q060      = where(function(m) return m.quality >= 0.6 end)
local q070      = where(function(m) return m.quality >= 0.7 end)
local q080      = where(function(m) return m.quality >= 0.8 end)
local q084      = where(function(m) return m.quality >= 0.84 end)
local q085      = where(function(m) return m.quality >= 0.85 end)
local vision_ok = where(function(m) return m.vision and m.quality >= 0.8 end)
local tool_ok   = where(function(m) return m.tools and m.quality >= 0.8 end)
local long_ok   = where(function(m) return m.context >= 128000 and m.quality >= 0.75 end)
local best_rated = {}
for i = 1, #rated do                     -- stable insertion sort by quality
  local m, j = rated[i], i
  while j > 1 and best_rated[j - 1].quality < m.quality do
    best_rated[j] = best_rated[j - 1]
    j = j - 1
  end
  best_rated[j] = m
end
local flash
for i = 1, #models do if models[i].name == "gemini_2_5_flash" then flash = models[i] end end

-- per-decision state, reused
local r_in, r_out, r_img, r_tools, r_json, r_lat = 0, 0, 0, false, false, 0
local r_filter, r_costmax = F_NONE, 0
local nc = 0
local cand = { 0, 0, 0 }
local bm, k1, k2 = { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }

local function cost_on(m)
  local lng = m.long_above > 0 and r_in > m.long_above
  local p_in = (lng and m.long_input > 0) and m.long_input or m.input
  local p_out = (lng and m.long_output > 0) and m.long_output or m.output
  return r_in * p_in + r_out * p_out
end

local function admissible(m)
  if (r_img > 0 and not m.vision) or (r_tools and not m.tools) or (r_json and not m.json)
     or not m.healthy then
    return false
  end
  if m.context > 0 and r_in + r_out > m.context then return false end
  return m.max_output == 0 or r_out <= m.max_output
end

local function pick(pool, ord)
  local need = 3 - nc
  if need <= 0 then return end
  local nb = 0
  for i = 1, #pool do
    local m = pool[i]
    if ord == BEST and nb == need and -m.quality > k1[nb] then break end
    local idx, ok = m.idx, true
    for j = 1, nc do
      if cand[j] == idx then ok = false; break end
    end
    if ok and admissible(m) and (r_filter ~= F_P95 or m.p95 <= r_lat) then
      local cost, a, b = 0, 0, 0
      cost = cost_on(m)
      if r_filter ~= F_COST or cost < r_costmax then
        if ord == CHEAPEST then a = cost
        elseif ord == FASTEST then a = m.p95 > 0 and m.p95 or INF; b = cost
        else a = -m.quality; b = cost end
        local pos = nb
        while pos > 0 and (a < k1[pos] or (a == k1[pos] and b < k2[pos])) do pos = pos - 1 end
        if pos < need then
          if nb < need then nb = nb + 1 end
          for j = nb, pos + 2, -1 do
            bm[j] = bm[j - 1]; k1[j] = k1[j - 1]; k2[j] = k2[j - 1]
          end
          bm[pos + 1] = idx; k1[pos + 1] = a; k2[pos + 1] = b
        end
      end
    end
  end
  for i = 1, nb do
    nc = nc + 1
    cand[nc] = bm[i]
  end
end

local function try(pool, ord, filter)
  r_filter = filter
  nc = 0
  pick(pool, ord)
  return nc > 0
end

local function result(rule)
  return rule, nc, cand[1], cand[2], cand[3], cost_on(models[cand[1] + 1])
end

return function(task, tier, tenant, user, input, output, images, tools, json, latency)
  r_in = input > 0 and input or 0
  r_out = output > 0 and output or 0
  r_img, r_tools, r_json, r_lat = images, tools, json, latency
  local ent, code = tier == "enterprise", task == "code"
  if (spent[tenant] or 0) / limit >= 1.0 and try(q060, CHEAPEST, F_NONE) then return result(1) end
  if latency > 0 and latency < 1500 and try(rated, FASTEST, F_P95) then return result(2) end
  if ent and code and try(best_rated, BEST, F_NONE) then return result(3) end
  if images > 0 and try(vision_ok, CHEAPEST, F_NONE) then return result(4) end
  if task == "chat" and bucket(user) < 5 then
    nc = 0
    r_filter = F_NONE
    if admissible(flash) then nc = 1; cand[1] = flash.idx end
    pick(q080, CHEAPEST)
    if nc > 0 then return result(5) end
  end
  if r_in + r_out > 8000 and try(long_ok, CHEAPEST, F_NONE) then return result(6) end
  if ent then
    r_costmax = 0.02
    if try(best_rated, BEST, F_COST) then return result(7) end
  end
  if tools and try(tool_ok, CHEAPEST, F_NONE) then return result(8) end
  if code and try(q085, CHEAPEST, F_NONE) then return result(9) end
  if tier == "pro" and try(q084, CHEAPEST, F_NONE) then return result(10) end
  if tier == "free" then
    r_costmax = 0.0002
    if try(q070, CHEAPEST, F_COST) then return result(11) end
  end
  if try(q080, CHEAPEST, F_NONE) then return result(12) end
  return 0, 0, 0, 0, 0, 0
end
