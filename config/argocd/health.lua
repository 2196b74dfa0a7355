-- Argo CD health check for trafficctl.io/Canary: add it to argocd-cm as
-- resource.customizations.health.trafficctl.io_Canary (see docs/gitops.md).
hs = {}
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "The Canary is suspended (spec.suspend)."
  return hs
end
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for trafficctl to look at the Canary."
  return hs
end
local st = obj.status
local generation = 0
if obj.metadata ~= nil and obj.metadata.generation ~= nil then
  generation = obj.metadata.generation
end
if st.observedGeneration == nil or st.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for trafficctl to observe generation " .. generation .. "."
  return hs
end
local ready = nil
local stalled = nil
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Ready" then ready = c end
    if c.type == "Stalled" and c.status == "True" then stalled = c end
  end
end
local message = ""
if ready ~= nil and ready.message ~= nil then message = ready.message end
if st.paused ~= nil then
  hs.status = "Suspended"
  hs.message = message
  return hs
end
if st.phase == "Failed" or stalled ~= nil then
  hs.status = "Degraded"
  hs.message = message
  return hs
end
if (st.phase == "Succeeded" or st.phase == "Initialized") and ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
  return hs
end
hs.status = "Progressing"
hs.message = message
return hs
