#!/usr/bin/env python3
# Compares tern's plan (`tern plan --json`) with what confd renders (compiled bird*.cfg) for the
# cases of Calico's confd corpus: peerings (name, address, port, AS, local AS, passive, RR
# client, TTL security, next hop, source address, GR time, password, allow local AS), the
# aggregation set (calico_aggr) and the static protocol's routes.
#
# Usage: CALICO_REPO=<git dir of projectcalico/calico> TERN=target/debug/tern \
#          python3 scripts/compare-confd-corpus.py
# A manual check (it needs a checkout of Calico); the golden plans in fixtures/clusters are the
# tests. The node is kube-master with the harness's standard block affinities, as confd's tests.
import json, os, re, subprocess, sys, tempfile
REPO=os.environ.get('CALICO_REPO','/work/.mirror/projectcalico+calico/repo')
TERN=os.environ.get('TERN','target/debug/tern')
WORK=tempfile.mkdtemp(prefix='tern-corpus-')
AFFINITIES=[('10.0.0.0/30',''),('10.1.0.0/24',''),('10.2.0.1/32',''),('192.168.221.192/26',''),
            ('192.168.221.64/26','confirmed'),('192.168.221.0/26','pending')]
with open(os.path.join(WORK,'affinities.yaml'),'w') as f:
    for i,(c,st) in enumerate(AFFINITIES):
        f.write(f'---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {{name: a{i}}}\n'
                f'spec: {{node: kube-master, cidr: "{c}", state: "{st}"}}\n')
def show(path):
    r=subprocess.run(['git','-C',REPO,'show','HEAD:'+path],capture_output=True,text=True)
    return r.stdout if r.returncode==0 else None
def parse_bird(text):
    peers={}
    if not text: return peers,[],[]
    for m in re.finditer(r'protocol bgp (\S+) from bgp_template \{(.*?)\n\}',text,re.S):
        name,body=m.group(1),m.group(2)
        p={}
        n=re.search(r'neighbor (\S+)(?: port (\d+))? as (\d+);',body)
        p['address']=n.group(1); p['port']=int(n.group(2) or 179); p['peer_as']=int(n.group(3))
        la=re.search(r'local as (\d+);',body); p['local_as']=int(la.group(1)) if la else None
        p['passive']='passive on;' in body
        p['rr_client']='rr client;' in body
        t=re.search(r'ttl security (\S+);',body); p['ttl']=t.group(1) if t else None
        if p['ttl']=='on':
            mh=re.search(r'multihop (\d+);',body); p['ttl']=mh.group(1)
        nh='self' if 'next hop self' in body else ('keep' if 'next hop keep' in body else 'auto')
        p['next_hop']=nh
        s=re.search(r'source address (\S+);',body); p['source']=s.group(1) if s else None
        gr=re.search(r'graceful restart time (\d+);',body); p['gr']=int(gr.group(1)) if gr else None
        p['password']='password' in body
        p['allow_local_as']=int(re.search(r'allow local as (\d+);',body).group(1)) if 'allow local as' in body else None
        peers[name]=p
    return peers
def global_as(text):
    m=re.search(r'template bgp bgp_template \{.*?local as (\d+);',text or '',re.S)
    return int(m.group(1)) if m else None
def aggr(text):
    return sorted(set(re.findall(r'if \( net = (\S+) \) then \{ accept; \}',text or '')))
def blackholes(aggr_text, ipam_text):
    holes=re.findall(r'route (\S+) blackhole;',aggr_text or '')
    return holes
def run(case, golden, env, node):
    inp=os.path.join(WORK,case.replace('/','__')+'.yaml')
    with open(inp,'w') as f: f.write(show(f'confd/tests/mock_data/calicoctl/{case}/input.yaml') or '')
    args=[TERN,'plan','--json','--node',node,'--datastore',inp]
    if node=='kube-master': args+=['--datastore',os.path.join(WORK,'affinities.yaml')]
    e=dict(os.environ); e.update(env); e['NO_DEFAULT_POOLS']='true'
    r=subprocess.run(args,capture_output=True,text=True,env=e)
    if r.returncode!=0: return None, r.stderr.strip().splitlines()[-1] if r.stderr else 'fail'
    return json.loads(r.stdout), None
def compare(case, golden, env={}, node='kube-master'):
    diffs=[]
    plan,err=run(case,golden,env,node)
    if plan is None: return [f'tern failed: {err}']
    for fam,cfg,ag in [(4,'bird.cfg','bird_aggr.cfg'),(6,'bird6.cfg','bird6_aggr.cfg')]:
        text=show(f'confd/tests/compiled_templates/{golden}/{cfg}')
        want=parse_bird(text)
        got={p['name']:p for p in plan['peerings'] if (':' in p['address'])==(fam==6)}
        for n in sorted(set(want)|set(got)):
            if n not in got: diffs.append(f'v{fam} missing peering {n}'); continue
            if n not in want: diffs.append(f'v{fam} extra peering {n}'); continue
            w,g=want[n],got[n]
            checks=[('address',w['address'],g['address']),('port',w['port'],g['port']),('peer_as',w['peer_as'],g['peerAs']),
                    ('passive',w['passive'],g['passive']),('rr_client',w['rr_client'],g['routeReflectorClient']),
                    ('next_hop',w['next_hop'],{'Auto':'auto','Self':'self','Keep':'keep'}.get(g['nextHop'],g['nextHop'])),
                    ('source',w['source'],g.get('sourceAddress')),('gr',w['gr'],g.get('gracefulRestartTime')),
                    ('password',w['password'],'password' in g and g['password']['status']['state']=='resolved'),
                    ('allow_local_as',w['allow_local_as'],g.get('allowLocalAs'))]
            ttl=g['ttl']; gt='off' if 'multihop' in ttl else str(ttl['security']['hops'])
            checks.append(('ttl',w['ttl'],gt))
            las=w['local_as'] if w['local_as'] is not None else global_as(text)
            checks.append(('local_as',las,g['localAs']))
            for k,a,b in checks:
                if a!=b: diffs.append(f'{n}.{k}: confd {a} tern {b}')
        if node=='kube-master':
            at=show(f'confd/tests/compiled_templates/{golden}/{ag}')
            wa=aggr(at); ga=sorted(b for b in plan['policy']['ownBlocks'] if (':' in b)==(fam==6))
            if wa!=ga: diffs.append(f'v{fam} aggr confd {wa} tern {ga}')
            wb=sorted(blackholes(at,None))
            gb=sorted(o['prefix'] for o in plan['originated'] if (':' in o['prefix'])==(fam==6) and not (o['kind']=='block' and (o['prefix'].endswith('/32') or o['prefix'].endswith('/128'))))
            if wb!=gb: diffs.append(f'v{fam} static blocks confd {wb} tern {gb}')
    return diffs
CASES=[l.split() for l in '''mesh/bgp-export mesh/bgp-export
mesh/ipip-always mesh/ipip-always
mesh/ipip-cross-subnet mesh/ipip-cross-subnet
mesh/ipip-off mesh/ipip-off
mesh/vxlan-always mesh/vxlan-always
mesh/hash mesh/hash CALICO_ROUTER_ID=hash
mesh/communities mesh/communities
mesh/restart-time mesh/restart-time
mesh/route-reflector-mesh-enabled mesh/route-reflector-mesh-enabled
mesh/static-routes mesh/static-routes
mesh/static-routes-exclude-node mesh/static-routes-exclude-node
mesh/static-routes-no-ipv4-address mesh/static-routes-no-ipv4-address CALICO_ROUTER_ID=10.10.10.10
explicit_peering/global explicit_peering/global
explicit_peering/global-external explicit_peering/global-external
explicit_peering/global-ipv6 explicit_peering/global-ipv6
explicit_peering/specific_node explicit_peering/specific_node
explicit_peering/selectors explicit_peering/selectors
explicit_peering/route_reflector explicit_peering/route_reflector
explicit_peering/route_reflector_v6_by_ip explicit_peering/route_reflector_v6_by_ip
explicit_peering/keepnexthop explicit_peering/keepnexthop
explicit_peering/keepnexthop-global explicit_peering/keepnexthop-global
explicit_peering/local-as explicit_peering/local-as
explicit_peering/local-as-global explicit_peering/local-as-global
explicit_peering/local-as-ipv6 explicit_peering/local-as-ipv6
explicit_peering/local-as-global-ipv6 explicit_peering/local-as-global-ipv6
ignored_interfaces ignored_interfaces
reachable_by/global_peers reachable_by/global_peers
reachable_by/route_reflectors reachable_by/route_reflectors
felix_cluster_routing felix_cluster_routing
cluster_routes/default cluster_routes/default
cluster_routes/enabled cluster_routes/enabled
cluster_routes/ipip-only cluster_routes/ipip-only
cluster_routes/noencap-only cluster_routes/noencap-only
next_hop_mode/global_peers next_hop_mode/global_peers
next_hop_mode/route_reflectors next_hop_mode/route_reflectors
reverse_peering/manual reverse_peering/manual
reverse_peering/auto reverse_peering/auto
ttl_security/explicit_node ttl_security/explicit_node
ttl_security/peer_selector ttl_security/peer_selector
ttl_security/global ttl_security/global
bgpfilter/single_filter/global_peer bgpfilter/single_filter/global_peer
bgpfilter/node_mesh bgpfilter/node_mesh
bgpfilter/peer_type bgpfilter/peer_type
'''.splitlines() if l.strip() and not l.startswith('#')]
total=ok=0
for c in CASES:
    case,golden=c[0],c[1]; env=dict(kv.split('=',1) for kv in c[2:] if '=' in kv and not kv.startswith('node='))
    node=next((kv[5:] for kv in c[2:] if kv.startswith('node=')),'kube-master')
    d=compare(case,golden,env,node); total+=1
    if not d: ok+=1; print(f'OK   {golden}')
    else: print(f'DIFF {golden}: '+'; '.join(d[:6]))
print(f'{ok}/{total} agree')
