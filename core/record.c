/*
 * The session recording format: encoder, key sealing and a chunk-fed
 * reader. See record.h for the layout and docs/recording-format.md for the
 * specification.
 */
#include "record.h"

#include <string.h>

#include "syslog.h"
#include "util.h"

#define CHAIN_LABEL "SHIMREC chain v1"
#define SEAL_LABEL "SHIMREC seal v1"
#define FOOTER_LABEL "SHIMREC footer v1"

/* Largest item header: tag varint + two zigzag varints. */
#define ITEM_RESERVE 24
/* Bytes of a DATA body besides the ciphertext: type, 3 varints, tag. */
#define DATA_PREFIX_MAX (1 + 3 * 10)

/* Fixed part of the footer body (without reason text and signature). */
#define FOOTER_FIXED (1 + 8 * 7 + 4 + 1)

enum {
	RS_MAGIC = 0,
	RS_HEADER,
	RS_FRAMES,
	RS_AFTER_FOOTER,
	RS_BAD,    /* a bad frame; torn or corrupt is decided at finish */
	RS_FAILED, /* corrupt for certain, or a callback stopped us */
};

/* CRC-32 (IEEE 802.3) tables for slicing by four, the same checksum as
 * shim_crc32() at several times its speed on large records. */
static const uint32_t crc_tab[4][256] = {
	{
		0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau,
		0x076dc419u, 0x706af48fu, 0xe963a535u, 0x9e6495a3u,
		0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
		0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u,
		0x1db71064u, 0x6ab020f2u, 0xf3b97148u, 0x84be41deu,
		0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
		0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu,
		0x14015c4fu, 0x63066cd9u, 0xfa0f3d63u, 0x8d080df5u,
		0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
		0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu,
		0x35b5a8fau, 0x42b2986cu, 0xdbbbc9d6u, 0xacbcf940u,
		0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
		0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u,
		0x21b4f4b5u, 0x56b3c423u, 0xcfba9599u, 0xb8bda50fu,
		0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
		0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du,
		0x76dc4190u, 0x01db7106u, 0x98d220bcu, 0xefd5102au,
		0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
		0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u,
		0x7f6a0dbbu, 0x086d3d2du, 0x91646c97u, 0xe6635c01u,
		0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
		0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u,
		0x65b0d9c6u, 0x12b7e950u, 0x8bbeb8eau, 0xfcb9887cu,
		0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
		0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u,
		0x4adfa541u, 0x3dd895d7u, 0xa4d1c46du, 0xd3d6f4fbu,
		0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
		0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u,
		0x5005713cu, 0x270241aau, 0xbe0b1010u, 0xc90c2086u,
		0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
		0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u,
		0x59b33d17u, 0x2eb40d81u, 0xb7bd5c3bu, 0xc0ba6cadu,
		0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
		0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u,
		0xe3630b12u, 0x94643b84u, 0x0d6d6a3eu, 0x7a6a5aa8u,
		0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
		0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu,
		0xf762575du, 0x806567cbu, 0x196c3671u, 0x6e6b06e7u,
		0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
		0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u,
		0xd6d6a3e8u, 0xa1d1937eu, 0x38d8c2c4u, 0x4fdff252u,
		0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
		0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u,
		0xdf60efc3u, 0xa867df55u, 0x316e8eefu, 0x4669be79u,
		0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
		0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu,
		0xc5ba3bbeu, 0xb2bd0b28u, 0x2bb45a92u, 0x5cb36a04u,
		0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
		0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au,
		0x9c0906a9u, 0xeb0e363fu, 0x72076785u, 0x05005713u,
		0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
		0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u,
		0x86d3d2d4u, 0xf1d4e242u, 0x68ddb3f8u, 0x1fda836eu,
		0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
		0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu,
		0x8f659effu, 0xf862ae69u, 0x616bffd3u, 0x166ccf45u,
		0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
		0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu,
		0xaed16a4au, 0xd9d65adcu, 0x40df0b66u, 0x37d83bf0u,
		0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
		0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u,
		0xbad03605u, 0xcdd70693u, 0x54de5729u, 0x23d967bfu,
		0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
		0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
	},
	{
		0x00000000u, 0x191b3141u, 0x32366282u, 0x2b2d53c3u,
		0x646cc504u, 0x7d77f445u, 0x565aa786u, 0x4f4196c7u,
		0xc8d98a08u, 0xd1c2bb49u, 0xfaefe88au, 0xe3f4d9cbu,
		0xacb54f0cu, 0xb5ae7e4du, 0x9e832d8eu, 0x87981ccfu,
		0x4ac21251u, 0x53d92310u, 0x78f470d3u, 0x61ef4192u,
		0x2eaed755u, 0x37b5e614u, 0x1c98b5d7u, 0x05838496u,
		0x821b9859u, 0x9b00a918u, 0xb02dfadbu, 0xa936cb9au,
		0xe6775d5du, 0xff6c6c1cu, 0xd4413fdfu, 0xcd5a0e9eu,
		0x958424a2u, 0x8c9f15e3u, 0xa7b24620u, 0xbea97761u,
		0xf1e8e1a6u, 0xe8f3d0e7u, 0xc3de8324u, 0xdac5b265u,
		0x5d5daeaau, 0x44469febu, 0x6f6bcc28u, 0x7670fd69u,
		0x39316baeu, 0x202a5aefu, 0x0b07092cu, 0x121c386du,
		0xdf4636f3u, 0xc65d07b2u, 0xed705471u, 0xf46b6530u,
		0xbb2af3f7u, 0xa231c2b6u, 0x891c9175u, 0x9007a034u,
		0x179fbcfbu, 0x0e848dbau, 0x25a9de79u, 0x3cb2ef38u,
		0x73f379ffu, 0x6ae848beu, 0x41c51b7du, 0x58de2a3cu,
		0xf0794f05u, 0xe9627e44u, 0xc24f2d87u, 0xdb541cc6u,
		0x94158a01u, 0x8d0ebb40u, 0xa623e883u, 0xbf38d9c2u,
		0x38a0c50du, 0x21bbf44cu, 0x0a96a78fu, 0x138d96ceu,
		0x5ccc0009u, 0x45d73148u, 0x6efa628bu, 0x77e153cau,
		0xbabb5d54u, 0xa3a06c15u, 0x888d3fd6u, 0x91960e97u,
		0xded79850u, 0xc7cca911u, 0xece1fad2u, 0xf5facb93u,
		0x7262d75cu, 0x6b79e61du, 0x4054b5deu, 0x594f849fu,
		0x160e1258u, 0x0f152319u, 0x243870dau, 0x3d23419bu,
		0x65fd6ba7u, 0x7ce65ae6u, 0x57cb0925u, 0x4ed03864u,
		0x0191aea3u, 0x188a9fe2u, 0x33a7cc21u, 0x2abcfd60u,
		0xad24e1afu, 0xb43fd0eeu, 0x9f12832du, 0x8609b26cu,
		0xc94824abu, 0xd05315eau, 0xfb7e4629u, 0xe2657768u,
		0x2f3f79f6u, 0x362448b7u, 0x1d091b74u, 0x04122a35u,
		0x4b53bcf2u, 0x52488db3u, 0x7965de70u, 0x607eef31u,
		0xe7e6f3feu, 0xfefdc2bfu, 0xd5d0917cu, 0xcccba03du,
		0x838a36fau, 0x9a9107bbu, 0xb1bc5478u, 0xa8a76539u,
		0x3b83984bu, 0x2298a90au, 0x09b5fac9u, 0x10aecb88u,
		0x5fef5d4fu, 0x46f46c0eu, 0x6dd93fcdu, 0x74c20e8cu,
		0xf35a1243u, 0xea412302u, 0xc16c70c1u, 0xd8774180u,
		0x9736d747u, 0x8e2de606u, 0xa500b5c5u, 0xbc1b8484u,
		0x71418a1au, 0x685abb5bu, 0x4377e898u, 0x5a6cd9d9u,
		0x152d4f1eu, 0x0c367e5fu, 0x271b2d9cu, 0x3e001cddu,
		0xb9980012u, 0xa0833153u, 0x8bae6290u, 0x92b553d1u,
		0xddf4c516u, 0xc4eff457u, 0xefc2a794u, 0xf6d996d5u,
		0xae07bce9u, 0xb71c8da8u, 0x9c31de6bu, 0x852aef2au,
		0xca6b79edu, 0xd37048acu, 0xf85d1b6fu, 0xe1462a2eu,
		0x66de36e1u, 0x7fc507a0u, 0x54e85463u, 0x4df36522u,
		0x02b2f3e5u, 0x1ba9c2a4u, 0x30849167u, 0x299fa026u,
		0xe4c5aeb8u, 0xfdde9ff9u, 0xd6f3cc3au, 0xcfe8fd7bu,
		0x80a96bbcu, 0x99b25afdu, 0xb29f093eu, 0xab84387fu,
		0x2c1c24b0u, 0x350715f1u, 0x1e2a4632u, 0x07317773u,
		0x4870e1b4u, 0x516bd0f5u, 0x7a468336u, 0x635db277u,
		0xcbfad74eu, 0xd2e1e60fu, 0xf9ccb5ccu, 0xe0d7848du,
		0xaf96124au, 0xb68d230bu, 0x9da070c8u, 0x84bb4189u,
		0x03235d46u, 0x1a386c07u, 0x31153fc4u, 0x280e0e85u,
		0x674f9842u, 0x7e54a903u, 0x5579fac0u, 0x4c62cb81u,
		0x8138c51fu, 0x9823f45eu, 0xb30ea79du, 0xaa1596dcu,
		0xe554001bu, 0xfc4f315au, 0xd7626299u, 0xce7953d8u,
		0x49e14f17u, 0x50fa7e56u, 0x7bd72d95u, 0x62cc1cd4u,
		0x2d8d8a13u, 0x3496bb52u, 0x1fbbe891u, 0x06a0d9d0u,
		0x5e7ef3ecu, 0x4765c2adu, 0x6c48916eu, 0x7553a02fu,
		0x3a1236e8u, 0x230907a9u, 0x0824546au, 0x113f652bu,
		0x96a779e4u, 0x8fbc48a5u, 0xa4911b66u, 0xbd8a2a27u,
		0xf2cbbce0u, 0xebd08da1u, 0xc0fdde62u, 0xd9e6ef23u,
		0x14bce1bdu, 0x0da7d0fcu, 0x268a833fu, 0x3f91b27eu,
		0x70d024b9u, 0x69cb15f8u, 0x42e6463bu, 0x5bfd777au,
		0xdc656bb5u, 0xc57e5af4u, 0xee530937u, 0xf7483876u,
		0xb809aeb1u, 0xa1129ff0u, 0x8a3fcc33u, 0x9324fd72u,
	},
	{
		0x00000000u, 0x01c26a37u, 0x0384d46eu, 0x0246be59u,
		0x0709a8dcu, 0x06cbc2ebu, 0x048d7cb2u, 0x054f1685u,
		0x0e1351b8u, 0x0fd13b8fu, 0x0d9785d6u, 0x0c55efe1u,
		0x091af964u, 0x08d89353u, 0x0a9e2d0au, 0x0b5c473du,
		0x1c26a370u, 0x1de4c947u, 0x1fa2771eu, 0x1e601d29u,
		0x1b2f0bacu, 0x1aed619bu, 0x18abdfc2u, 0x1969b5f5u,
		0x1235f2c8u, 0x13f798ffu, 0x11b126a6u, 0x10734c91u,
		0x153c5a14u, 0x14fe3023u, 0x16b88e7au, 0x177ae44du,
		0x384d46e0u, 0x398f2cd7u, 0x3bc9928eu, 0x3a0bf8b9u,
		0x3f44ee3cu, 0x3e86840bu, 0x3cc03a52u, 0x3d025065u,
		0x365e1758u, 0x379c7d6fu, 0x35dac336u, 0x3418a901u,
		0x3157bf84u, 0x3095d5b3u, 0x32d36beau, 0x331101ddu,
		0x246be590u, 0x25a98fa7u, 0x27ef31feu, 0x262d5bc9u,
		0x23624d4cu, 0x22a0277bu, 0x20e69922u, 0x2124f315u,
		0x2a78b428u, 0x2bbade1fu, 0x29fc6046u, 0x283e0a71u,
		0x2d711cf4u, 0x2cb376c3u, 0x2ef5c89au, 0x2f37a2adu,
		0x709a8dc0u, 0x7158e7f7u, 0x731e59aeu, 0x72dc3399u,
		0x7793251cu, 0x76514f2bu, 0x7417f172u, 0x75d59b45u,
		0x7e89dc78u, 0x7f4bb64fu, 0x7d0d0816u, 0x7ccf6221u,
		0x798074a4u, 0x78421e93u, 0x7a04a0cau, 0x7bc6cafdu,
		0x6cbc2eb0u, 0x6d7e4487u, 0x6f38fadeu, 0x6efa90e9u,
		0x6bb5866cu, 0x6a77ec5bu, 0x68315202u, 0x69f33835u,
		0x62af7f08u, 0x636d153fu, 0x612bab66u, 0x60e9c151u,
		0x65a6d7d4u, 0x6464bde3u, 0x662203bau, 0x67e0698du,
		0x48d7cb20u, 0x4915a117u, 0x4b531f4eu, 0x4a917579u,
		0x4fde63fcu, 0x4e1c09cbu, 0x4c5ab792u, 0x4d98dda5u,
		0x46c49a98u, 0x4706f0afu, 0x45404ef6u, 0x448224c1u,
		0x41cd3244u, 0x400f5873u, 0x4249e62au, 0x438b8c1du,
		0x54f16850u, 0x55330267u, 0x5775bc3eu, 0x56b7d609u,
		0x53f8c08cu, 0x523aaabbu, 0x507c14e2u, 0x51be7ed5u,
		0x5ae239e8u, 0x5b2053dfu, 0x5966ed86u, 0x58a487b1u,
		0x5deb9134u, 0x5c29fb03u, 0x5e6f455au, 0x5fad2f6du,
		0xe1351b80u, 0xe0f771b7u, 0xe2b1cfeeu, 0xe373a5d9u,
		0xe63cb35cu, 0xe7fed96bu, 0xe5b86732u, 0xe47a0d05u,
		0xef264a38u, 0xeee4200fu, 0xeca29e56u, 0xed60f461u,
		0xe82fe2e4u, 0xe9ed88d3u, 0xebab368au, 0xea695cbdu,
		0xfd13b8f0u, 0xfcd1d2c7u, 0xfe976c9eu, 0xff5506a9u,
		0xfa1a102cu, 0xfbd87a1bu, 0xf99ec442u, 0xf85cae75u,
		0xf300e948u, 0xf2c2837fu, 0xf0843d26u, 0xf1465711u,
		0xf4094194u, 0xf5cb2ba3u, 0xf78d95fau, 0xf64fffcdu,
		0xd9785d60u, 0xd8ba3757u, 0xdafc890eu, 0xdb3ee339u,
		0xde71f5bcu, 0xdfb39f8bu, 0xddf521d2u, 0xdc374be5u,
		0xd76b0cd8u, 0xd6a966efu, 0xd4efd8b6u, 0xd52db281u,
		0xd062a404u, 0xd1a0ce33u, 0xd3e6706au, 0xd2241a5du,
		0xc55efe10u, 0xc49c9427u, 0xc6da2a7eu, 0xc7184049u,
		0xc25756ccu, 0xc3953cfbu, 0xc1d382a2u, 0xc011e895u,
		0xcb4dafa8u, 0xca8fc59fu, 0xc8c97bc6u, 0xc90b11f1u,
		0xcc440774u, 0xcd866d43u, 0xcfc0d31au, 0xce02b92du,
		0x91af9640u, 0x906dfc77u, 0x922b422eu, 0x93e92819u,
		0x96a63e9cu, 0x976454abu, 0x9522eaf2u, 0x94e080c5u,
		0x9fbcc7f8u, 0x9e7eadcfu, 0x9c381396u, 0x9dfa79a1u,
		0x98b56f24u, 0x99770513u, 0x9b31bb4au, 0x9af3d17du,
		0x8d893530u, 0x8c4b5f07u, 0x8e0de15eu, 0x8fcf8b69u,
		0x8a809decu, 0x8b42f7dbu, 0x89044982u, 0x88c623b5u,
		0x839a6488u, 0x82580ebfu, 0x801eb0e6u, 0x81dcdad1u,
		0x8493cc54u, 0x8551a663u, 0x8717183au, 0x86d5720du,
		0xa9e2d0a0u, 0xa820ba97u, 0xaa6604ceu, 0xaba46ef9u,
		0xaeeb787cu, 0xaf29124bu, 0xad6fac12u, 0xacadc625u,
		0xa7f18118u, 0xa633eb2fu, 0xa4755576u, 0xa5b73f41u,
		0xa0f829c4u, 0xa13a43f3u, 0xa37cfdaau, 0xa2be979du,
		0xb5c473d0u, 0xb40619e7u, 0xb640a7beu, 0xb782cd89u,
		0xb2cddb0cu, 0xb30fb13bu, 0xb1490f62u, 0xb08b6555u,
		0xbbd72268u, 0xba15485fu, 0xb853f606u, 0xb9919c31u,
		0xbcde8ab4u, 0xbd1ce083u, 0xbf5a5edau, 0xbe9834edu,
	},
	{
		0x00000000u, 0xb8bc6765u, 0xaa09c88bu, 0x12b5afeeu,
		0x8f629757u, 0x37def032u, 0x256b5fdcu, 0x9dd738b9u,
		0xc5b428efu, 0x7d084f8au, 0x6fbde064u, 0xd7018701u,
		0x4ad6bfb8u, 0xf26ad8ddu, 0xe0df7733u, 0x58631056u,
		0x5019579fu, 0xe8a530fau, 0xfa109f14u, 0x42acf871u,
		0xdf7bc0c8u, 0x67c7a7adu, 0x75720843u, 0xcdce6f26u,
		0x95ad7f70u, 0x2d111815u, 0x3fa4b7fbu, 0x8718d09eu,
		0x1acfe827u, 0xa2738f42u, 0xb0c620acu, 0x087a47c9u,
		0xa032af3eu, 0x188ec85bu, 0x0a3b67b5u, 0xb28700d0u,
		0x2f503869u, 0x97ec5f0cu, 0x8559f0e2u, 0x3de59787u,
		0x658687d1u, 0xdd3ae0b4u, 0xcf8f4f5au, 0x7733283fu,
		0xeae41086u, 0x525877e3u, 0x40edd80du, 0xf851bf68u,
		0xf02bf8a1u, 0x48979fc4u, 0x5a22302au, 0xe29e574fu,
		0x7f496ff6u, 0xc7f50893u, 0xd540a77du, 0x6dfcc018u,
		0x359fd04eu, 0x8d23b72bu, 0x9f9618c5u, 0x272a7fa0u,
		0xbafd4719u, 0x0241207cu, 0x10f48f92u, 0xa848e8f7u,
		0x9b14583du, 0x23a83f58u, 0x311d90b6u, 0x89a1f7d3u,
		0x1476cf6au, 0xaccaa80fu, 0xbe7f07e1u, 0x06c36084u,
		0x5ea070d2u, 0xe61c17b7u, 0xf4a9b859u, 0x4c15df3cu,
		0xd1c2e785u, 0x697e80e0u, 0x7bcb2f0eu, 0xc377486bu,
		0xcb0d0fa2u, 0x73b168c7u, 0x6104c729u, 0xd9b8a04cu,
		0x446f98f5u, 0xfcd3ff90u, 0xee66507eu, 0x56da371bu,
		0x0eb9274du, 0xb6054028u, 0xa4b0efc6u, 0x1c0c88a3u,
		0x81dbb01au, 0x3967d77fu, 0x2bd27891u, 0x936e1ff4u,
		0x3b26f703u, 0x839a9066u, 0x912f3f88u, 0x299358edu,
		0xb4446054u, 0x0cf80731u, 0x1e4da8dfu, 0xa6f1cfbau,
		0xfe92dfecu, 0x462eb889u, 0x549b1767u, 0xec277002u,
		0x71f048bbu, 0xc94c2fdeu, 0xdbf98030u, 0x6345e755u,
		0x6b3fa09cu, 0xd383c7f9u, 0xc1366817u, 0x798a0f72u,
		0xe45d37cbu, 0x5ce150aeu, 0x4e54ff40u, 0xf6e89825u,
		0xae8b8873u, 0x1637ef16u, 0x048240f8u, 0xbc3e279du,
		0x21e91f24u, 0x99557841u, 0x8be0d7afu, 0x335cb0cau,
		0xed59b63bu, 0x55e5d15eu, 0x47507eb0u, 0xffec19d5u,
		0x623b216cu, 0xda874609u, 0xc832e9e7u, 0x708e8e82u,
		0x28ed9ed4u, 0x9051f9b1u, 0x82e4565fu, 0x3a58313au,
		0xa78f0983u, 0x1f336ee6u, 0x0d86c108u, 0xb53aa66du,
		0xbd40e1a4u, 0x05fc86c1u, 0x1749292fu, 0xaff54e4au,
		0x322276f3u, 0x8a9e1196u, 0x982bbe78u, 0x2097d91du,
		0x78f4c94bu, 0xc048ae2eu, 0xd2fd01c0u, 0x6a4166a5u,
		0xf7965e1cu, 0x4f2a3979u, 0x5d9f9697u, 0xe523f1f2u,
		0x4d6b1905u, 0xf5d77e60u, 0xe762d18eu, 0x5fdeb6ebu,
		0xc2098e52u, 0x7ab5e937u, 0x680046d9u, 0xd0bc21bcu,
		0x88df31eau, 0x3063568fu, 0x22d6f961u, 0x9a6a9e04u,
		0x07bda6bdu, 0xbf01c1d8u, 0xadb46e36u, 0x15080953u,
		0x1d724e9au, 0xa5ce29ffu, 0xb77b8611u, 0x0fc7e174u,
		0x9210d9cdu, 0x2aacbea8u, 0x38191146u, 0x80a57623u,
		0xd8c66675u, 0x607a0110u, 0x72cfaefeu, 0xca73c99bu,
		0x57a4f122u, 0xef189647u, 0xfdad39a9u, 0x45115eccu,
		0x764dee06u, 0xcef18963u, 0xdc44268du, 0x64f841e8u,
		0xf92f7951u, 0x41931e34u, 0x5326b1dau, 0xeb9ad6bfu,
		0xb3f9c6e9u, 0x0b45a18cu, 0x19f00e62u, 0xa14c6907u,
		0x3c9b51beu, 0x842736dbu, 0x96929935u, 0x2e2efe50u,
		0x2654b999u, 0x9ee8defcu, 0x8c5d7112u, 0x34e11677u,
		0xa9362eceu, 0x118a49abu, 0x033fe645u, 0xbb838120u,
		0xe3e09176u, 0x5b5cf613u, 0x49e959fdu, 0xf1553e98u,
		0x6c820621u, 0xd43e6144u, 0xc68bceaau, 0x7e37a9cfu,
		0xd67f4138u, 0x6ec3265du, 0x7c7689b3u, 0xc4caeed6u,
		0x591dd66fu, 0xe1a1b10au, 0xf3141ee4u, 0x4ba87981u,
		0x13cb69d7u, 0xab770eb2u, 0xb9c2a15cu, 0x017ec639u,
		0x9ca9fe80u, 0x241599e5u, 0x36a0360bu, 0x8e1c516eu,
		0x866616a7u, 0x3eda71c2u, 0x2c6fde2cu, 0x94d3b949u,
		0x090481f0u, 0xb1b8e695u, 0xa30d497bu, 0x1bb12e1eu,
		0x43d23e48u, 0xfb6e592du, 0xe9dbf6c3u, 0x516791a6u,
		0xccb0a91fu, 0x740cce7au, 0x66b96194u, 0xde0506f1u,
	},
};

static uint32_t crc32_fast(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n >= 4) {
		c ^= (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
		     ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
		c = crc_tab[3][c & 0xff] ^ crc_tab[2][(c >> 8) & 0xff] ^
		    crc_tab[1][(c >> 16) & 0xff] ^ crc_tab[0][c >> 24];
		p += 4;
		n -= 4;
	}
	while (n-- > 0) {
		c = crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	}
	return ~c;
}

/* ---- small encoders ---------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)((v >> 1) ^ (0 - (v & 1)));
}

/* Reads a varint from p[*pos..end). Returns 0 or SHIM_ECORRUPT. */
static int get_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	size_t i = *pos;

	while (i < end) {
		uint8_t b = p[i++];

		if (shift == 63 && (b & 0x7e) != 0) {
			return SHIM_ECORRUPT;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*pos = i;
			*out = v;
			return 0;
		}
		shift += 7;
		if (shift > 63) {
			return SHIM_ECORRUPT;
		}
	}
	return SHIM_ECORRUPT;
}

/* Differences of caller timestamps, computed without signed overflow. */
static int64_t sub_i64(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a - (uint64_t)b);
}

static int64_t add_i64(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* ---- HKDF ---------------------------------------------------------------- */

int shim_hkdf_sha256(const struct shim_crypto_ops *c, const uint8_t *salt,
		     size_t salt_len, const uint8_t *ikm, size_t ikm_len,
		     const uint8_t *info, size_t info_len, uint8_t *out,
		     size_t out_len)
{
	static const uint8_t zero_salt[32];
	uint8_t prk[32];
	uint8_t t[32 + 128 + 1];
	uint8_t block[32];
	size_t done = 0, tlen = 0;
	uint8_t ctr = 1;
	int rc;

	if (c == NULL || c->hmac == NULL || info_len > 128 ||
	    out_len > 255 * 32) {
		return SHIM_EINVAL;
	}
	if (salt == NULL || salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	rc = c->hmac(c->ctx, SHIM_MD_SHA256, salt, salt_len, ikm, ikm_len, prk);
	if (rc != 0) {
		goto out;
	}
	while (done < out_len) {
		size_t n;

		/* T(i) = HMAC(PRK, T(i-1) || info || i) */
		memcpy(t + tlen, info, info_len);
		t[tlen + info_len] = ctr++;
		rc = c->hmac(c->ctx, SHIM_MD_SHA256, prk, sizeof(prk), t,
			     tlen + info_len + 1, block);
		if (rc != 0) {
			goto out;
		}
		n = out_len - done < 32 ? out_len - done : 32;
		memcpy(out + done, block, n);
		done += n;
		memcpy(t, block, 32);
		tlen = 32;
	}
out:
	shim_memzero(prk, sizeof(prk));
	shim_memzero(t, sizeof(t));
	shim_memzero(block, sizeof(block));
	return rc;
}

/* ---- key sealing --------------------------------------------------------- */

static size_t seal_aad(const struct shim_rec_header *h, uint8_t *aad)
{
	size_t n = sizeof(SEAL_LABEL) - 1, l;

	memcpy(aad, SEAL_LABEL, n);
	l = strlen(h->session_id);
	aad[n++] = (uint8_t)l;
	memcpy(aad + n, h->session_id, l);
	n += l;
	l = strlen(h->shim_id);
	aad[n++] = (uint8_t)l;
	memcpy(aad + n, h->shim_id, l);
	n += l;
	l = strlen(h->technician_id);
	aad[n++] = (uint8_t)l;
	memcpy(aad + n, h->technician_id, l);
	n += l;
	return n;
}

static int seal_kek(const struct shim_crypto_ops *c,
		    const struct shim_rec_header *h,
		    const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		    const uint8_t shared[32], uint8_t kek[32])
{
	uint8_t salt[2 * SHIM_P256_PUB_LEN];
	uint8_t info[sizeof(SEAL_LABEL) + SHIM_REC_ID_MAX];
	size_t ilen = sizeof(SEAL_LABEL) - 1, sl = strlen(h->session_id);

	memcpy(salt, h->eph_pub, SHIM_P256_PUB_LEN);
	memcpy(salt + SHIM_P256_PUB_LEN, recipient_pub, SHIM_P256_PUB_LEN);
	memcpy(info, SEAL_LABEL, ilen);
	memcpy(info + ilen, h->session_id, sl);
	return shim_hkdf_sha256(c, salt, sizeof(salt), shared, 32, info,
				ilen + sl, kek, 32);
}

/* 1 when s has a NUL within cap bytes. */
static int str_fits(const char *s, size_t cap)
{
	return memchr(s, 0, cap) != NULL;
}

static int header_ids_ok(const struct shim_rec_header *h)
{
	return str_fits(h->session_id, sizeof(h->session_id)) &&
	       str_fits(h->shim_id, sizeof(h->shim_id)) &&
	       str_fits(h->technician_id, sizeof(h->technician_id));
}

int shim_rec_seal_key_shared(const struct shim_crypto_ops *c,
			     const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
			     const uint8_t eph_pub[SHIM_P256_PUB_LEN],
			     const uint8_t shared[32],
			     const uint8_t key[SHIM_REC_KEY_LEN],
			     struct shim_rec_header *h)
{
	static const uint8_t nonce[SHIM_GCM_NONCE_LEN];
	uint8_t kek[32];
	uint8_t aad[sizeof(SEAL_LABEL) + 3 + 2 * SHIM_REC_ID_MAX +
		    SHIM_REC_TECH_MAX];
	int rc;

	if (c == NULL || c->hash == NULL || c->aead_seal == NULL ||
	    !header_ids_ok(h)) {
		return SHIM_EINVAL;
	}
	memcpy(h->eph_pub, eph_pub, SHIM_P256_PUB_LEN);
	rc = c->hash(c->ctx, SHIM_MD_SHA256, recipient_pub, SHIM_P256_PUB_LEN,
		     h->recipient_id);
	if (rc != 0) {
		goto out;
	}
	rc = seal_kek(c, h, recipient_pub, shared, kek);
	if (rc != 0) {
		goto out;
	}
	h->seal_alg = SHIM_REC_SEAL_P256_HKDF_AESGCM;
	rc = c->aead_seal(c->ctx, kek, nonce, aad, seal_aad(h, aad), key,
			  SHIM_REC_KEY_LEN, h->sealed_key, h->sealed_tag);
out:
	shim_memzero(kek, sizeof(kek));
	return rc;
}

int shim_rec_seal_key(const struct shim_crypto_ops *c,
		      const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
		      const uint8_t key[SHIM_REC_KEY_LEN],
		      struct shim_rec_header *h)
{
	uint8_t eph[SHIM_P256_PUB_LEN], shared[32];
	int rc;

	if (c == NULL || c->ecdh_ephemeral == NULL || !header_ids_ok(h)) {
		return SHIM_EINVAL;
	}
	rc = c->ecdh_ephemeral(c->ctx, recipient_pub, eph, shared);
	if (rc == 0) {
		rc = shim_rec_seal_key_shared(c, recipient_pub, eph, shared,
					      key, h);
	}
	shim_memzero(shared, sizeof(shared));
	return rc;
}

int shim_rec_unseal_key(const struct shim_crypto_ops *c,
			const struct shim_rec_header *h,
			const uint8_t recipient_pub[SHIM_P256_PUB_LEN],
			const uint8_t shared[32], uint8_t key[SHIM_REC_KEY_LEN])
{
	static const uint8_t nonce[SHIM_GCM_NONCE_LEN];
	uint8_t kek[32], id[32];
	uint8_t aad[sizeof(SEAL_LABEL) + 3 + 2 * SHIM_REC_ID_MAX +
		    SHIM_REC_TECH_MAX];
	int rc;

	if (c == NULL || c->aead_open == NULL || c->hash == NULL ||
	    !header_ids_ok(h) ||
	    h->seal_alg != SHIM_REC_SEAL_P256_HKDF_AESGCM) {
		return SHIM_EINVAL;
	}
	rc = c->hash(c->ctx, SHIM_MD_SHA256, recipient_pub, SHIM_P256_PUB_LEN,
		     id);
	if (rc != 0) {
		return rc;
	}
	if (!shim_ct_equal(id, h->recipient_id, sizeof(id))) {
		return SHIM_ECRYPTO;
	}
	rc = seal_kek(c, h, recipient_pub, shared, kek);
	if (rc == 0) {
		rc = c->aead_open(c->ctx, kek, nonce, aad, seal_aad(h, aad),
				  h->sealed_key, SHIM_REC_KEY_LEN,
				  h->sealed_tag, key);
		if (rc != 0) {
			rc = SHIM_ECRYPTO;
		}
	}
	shim_memzero(kek, sizeof(kek));
	return rc;
}

/* ---- frames -------------------------------------------------------------- */

/* Wraps body (already at out + 4, body_len bytes) into a frame. */
static size_t frame_close(uint8_t *out, size_t body_len)
{
	shim_put_u32(out, (uint32_t)body_len);
	shim_put_u32(out + 4 + body_len, crc32_fast(out, 4 + body_len));
	return body_len + SHIM_REC_FRAME_OVERHEAD;
}

static int chain_step(const struct shim_crypto_ops *c, uint8_t chain[32],
		      const uint8_t *frame, size_t len)
{
	uint8_t next[32];
	int rc;

	rc = c->hmac(c->ctx, SHIM_MD_SHA256, chain, 32, frame, len, next);
	if (rc == 0) {
		memcpy(chain, next, 32);
	}
	return rc;
}

static int chain_start(const struct shim_crypto_ops *c, uint8_t chain[32],
		       const uint8_t *hdr, size_t len)
{
	return c->hmac(c->ctx, SHIM_MD_SHA256, (const uint8_t *)CHAIN_LABEL,
		       sizeof(CHAIN_LABEL) - 1, hdr, len, chain);
}

static size_t put_str8(uint8_t *p, const char *s)
{
	size_t l = strlen(s);

	p[0] = (uint8_t)l;
	memcpy(p + 1, s, l);
	return l + 1;
}

int shim_rec_header_encode(const struct shim_rec_header *h, uint8_t *out,
			   size_t cap, size_t *len)
{
	uint8_t *b;
	size_t n = 0;

	*len = 0;
	if (!header_ids_ok(h)) {
		return SHIM_EINVAL;
	}
	if (cap < SHIM_REC_HEADER_MAX) {
		return SHIM_ENOSPC;
	}
	memcpy(out, SHIM_REC_MAGIC, SHIM_REC_MAGIC_LEN);
	b = out + SHIM_REC_MAGIC_LEN + 4;
	b[n++] = SHIM_REC_HEADER;
	shim_put_u16(b + n, SHIM_REC_VERSION);
	n += 2;
	n += put_str8(b + n, h->session_id);
	n += put_str8(b + n, h->shim_id);
	n += put_str8(b + n, h->technician_id);
	shim_put_u64(b + n, (uint64_t)h->start_wall_ns);
	n += 8;
	shim_put_u64(b + n, (uint64_t)h->start_mono_ns);
	n += 8;
	b[n++] = h->seal_alg;
	b[n++] = h->custody;
	memcpy(b + n, h->recipient_id, SHIM_REC_HASH_LEN);
	n += SHIM_REC_HASH_LEN;
	memcpy(b + n, h->eph_pub, SHIM_P256_PUB_LEN);
	n += SHIM_P256_PUB_LEN;
	memcpy(b + n, h->sealed_key, SHIM_REC_KEY_LEN);
	n += SHIM_REC_KEY_LEN;
	memcpy(b + n, h->sealed_tag, SHIM_GCM_TAG_LEN);
	n += SHIM_GCM_TAG_LEN;
	memcpy(b + n, h->identity_pub, SHIM_P256_PUB_LEN);
	n += SHIM_P256_PUB_LEN;
	*len = SHIM_REC_MAGIC_LEN + frame_close(out + SHIM_REC_MAGIC_LEN, n);
	return 0;
}

static int get_str8(const uint8_t *b, size_t end, size_t *pos, char *out,
		    size_t max)
{
	size_t l;

	if (*pos >= end) {
		return SHIM_ECORRUPT;
	}
	l = b[*pos];
	if (l > max || end - *pos - 1 < l || memchr(b + *pos + 1, 0, l)) {
		return SHIM_ECORRUPT;
	}
	memcpy(out, b + *pos + 1, l);
	out[l] = '\0';
	*pos += l + 1;
	return 0;
}

/* Parses a header body (type byte first). SHIM_ENOTSUP for a version we
 * do not read, SHIM_ECORRUPT for anything malformed. */
static int header_decode(const uint8_t *b, size_t n, struct shim_rec_header *h)
{
	size_t pos = 3;
	const size_t fixed = 8 + 8 + 2 + SHIM_REC_HASH_LEN +
			     SHIM_P256_PUB_LEN + SHIM_REC_KEY_LEN +
			     SHIM_GCM_TAG_LEN + SHIM_P256_PUB_LEN;

	memset(h, 0, sizeof(*h));
	if (n < 3 || b[0] != SHIM_REC_HEADER) {
		return SHIM_ECORRUPT;
	}
	h->version = shim_get_u16(b + 1);
	if (h->version != SHIM_REC_VERSION) {
		return SHIM_ENOTSUP;
	}
	if (get_str8(b, n, &pos, h->session_id, SHIM_REC_ID_MAX) != 0 ||
	    get_str8(b, n, &pos, h->shim_id, SHIM_REC_ID_MAX) != 0 ||
	    get_str8(b, n, &pos, h->technician_id, SHIM_REC_TECH_MAX) != 0) {
		return SHIM_ECORRUPT;
	}
	if (n - pos != fixed) {
		return SHIM_ECORRUPT;
	}
	h->start_wall_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	h->start_mono_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	h->seal_alg = b[pos++];
	h->custody = b[pos++];
	memcpy(h->recipient_id, b + pos, SHIM_REC_HASH_LEN);
	pos += SHIM_REC_HASH_LEN;
	memcpy(h->eph_pub, b + pos, SHIM_P256_PUB_LEN);
	pos += SHIM_P256_PUB_LEN;
	memcpy(h->sealed_key, b + pos, SHIM_REC_KEY_LEN);
	pos += SHIM_REC_KEY_LEN;
	memcpy(h->sealed_tag, b + pos, SHIM_GCM_TAG_LEN);
	pos += SHIM_GCM_TAG_LEN;
	memcpy(h->identity_pub, b + pos, SHIM_P256_PUB_LEN);
	if (h->session_id[0] == '\0') {
		return SHIM_ECORRUPT;
	}
	return 0;
}

/* ---- footer -------------------------------------------------------------- */

static size_t footer_body(const struct shim_rec_footer *f, uint8_t *b)
{
	size_t n = 0;

	b[n++] = SHIM_REC_FOOTER;
	shim_put_u64(b + n, (uint64_t)f->end_wall_ns);
	n += 8;
	shim_put_u64(b + n, (uint64_t)f->end_mono_ns);
	n += 8;
	shim_put_u64(b + n, f->bytes_in);
	n += 8;
	shim_put_u64(b + n, f->bytes_out);
	n += 8;
	shim_put_u64(b + n, f->records);
	n += 8;
	shim_put_u64(b + n, f->dropped);
	n += 8;
	shim_put_u64(b + n, f->cut);
	n += 8;
	shim_put_u32(b + n, f->flags);
	n += 4;
	n += put_str8(b + n, f->reason);
	memcpy(b + n, f->chain_head, SHIM_REC_HASH_LEN);
	n += SHIM_REC_HASH_LEN;
	return n;
}

/* SHA-256(FOOTER_LABEL || body-without-signature). */
static int footer_digest(const struct shim_crypto_ops *c, const uint8_t *body,
			 size_t n, uint8_t digest[32])
{
	uint8_t m[sizeof(FOOTER_LABEL) + SHIM_REC_FOOTER_MAX];
	size_t l = sizeof(FOOTER_LABEL) - 1;

	if (n > SHIM_REC_FOOTER_MAX) {
		return SHIM_EINVAL;
	}
	memcpy(m, FOOTER_LABEL, l);
	memcpy(m + l, body, n);
	return c->hash(c->ctx, SHIM_MD_SHA256, m, l + n, digest);
}

int shim_rec_footer_encode(const struct shim_crypto_ops *c,
			   struct shim_rec_footer *f, uint8_t *out, size_t cap,
			   size_t *len)
{
	uint8_t digest[32];
	size_t n;
	int rc;

	*len = 0;
	if (!str_fits(f->reason, sizeof(f->reason))) {
		return SHIM_EINVAL;
	}
	if (cap < SHIM_REC_FOOTER_MAX) {
		return SHIM_ENOSPC;
	}
	if (c->identity_sign == NULL || c->hash == NULL) {
		return SHIM_ENOTSUP;
	}
	n = footer_body(f, out + 4);
	rc = footer_digest(c, out + 4, n, digest);
	if (rc != 0) {
		return rc;
	}
	rc = c->identity_sign(c->ctx, digest, f->sig);
	if (rc != 0) {
		return rc;
	}
	memcpy(out + 4 + n, f->sig, SHIM_P256_SIG_LEN);
	n += SHIM_P256_SIG_LEN;
	*len = frame_close(out, n);
	return 0;
}

static int footer_decode(const uint8_t *b, size_t n, struct shim_rec_footer *f)
{
	size_t pos = 1;

	memset(f, 0, sizeof(*f));
	if (n < FOOTER_FIXED + SHIM_REC_HASH_LEN + SHIM_P256_SIG_LEN) {
		return SHIM_ECORRUPT;
	}
	f->end_wall_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	f->end_mono_ns = (int64_t)shim_get_u64(b + pos);
	pos += 8;
	f->bytes_in = shim_get_u64(b + pos);
	pos += 8;
	f->bytes_out = shim_get_u64(b + pos);
	pos += 8;
	f->records = shim_get_u64(b + pos);
	pos += 8;
	f->dropped = shim_get_u64(b + pos);
	pos += 8;
	f->cut = shim_get_u64(b + pos);
	pos += 8;
	f->flags = shim_get_u32(b + pos);
	pos += 4;
	if (get_str8(b, n, &pos, f->reason, SHIM_REC_REASON_MAX) != 0) {
		return SHIM_ECORRUPT;
	}
	if (n - pos != SHIM_REC_HASH_LEN + SHIM_P256_SIG_LEN) {
		return SHIM_ECORRUPT;
	}
	memcpy(f->chain_head, b + pos, SHIM_REC_HASH_LEN);
	pos += SHIM_REC_HASH_LEN;
	memcpy(f->sig, b + pos, SHIM_P256_SIG_LEN);
	return 0;
}

/* ---- writer -------------------------------------------------------------- */

int shim_rec_writer_init(struct shim_rec_writer *w,
			 const struct shim_crypto_ops *c,
			 const uint8_t key[SHIM_REC_KEY_LEN],
			 const struct shim_rec_header *h, const uint8_t *hdr,
			 size_t hdr_len, uint8_t *plain, size_t plain_cap)
{
	memset(w, 0, sizeof(*w));
	if (c == NULL || c->hmac == NULL || c->aead_seal == NULL ||
	    plain == NULL || plain_cap < SHIM_REC_MIN_PLAIN ||
	    plain_cap > SHIM_REC_MAX_PLAIN) {
		return SHIM_EINVAL;
	}
	w->crypto = c;
	memcpy(w->key, key, SHIM_REC_KEY_LEN);
	w->plain = plain;
	w->plain_cap = plain_cap;
	w->start_mono = h->start_mono_ns;
	w->prev_wall = h->start_wall_ns;
	w->prev_mono = h->start_mono_ns;
	w->last_wall = h->start_wall_ns;
	w->last_mono = h->start_mono_ns;
	return chain_start(c, w->chain, hdr, hdr_len);
}

static size_t item_header(uint8_t *p, enum shim_rec_kind kind, size_t len,
			  int64_t dmono, int64_t skew)
{
	size_t n;

	n = put_varint(p, ((uint64_t)len << 2) | (uint64_t)kind);
	n += put_varint(p + n, zigzag(dmono));
	n += put_varint(p + n, zigzag(skew));
	return n;
}

static void item_times(struct shim_rec_writer *w, int64_t wall, int64_t mono,
		       int64_t *dmono, int64_t *skew)
{
	*dmono = sub_i64(mono, w->prev_mono);
	*skew = sub_i64(sub_i64(wall, w->prev_wall), *dmono);
	w->prev_wall = wall;
	w->prev_mono = mono;
}

/* Encodes the open traffic item's header in front of its data. */
static void close_open(struct shim_rec_writer *w)
{
	uint8_t hdr[ITEM_RESERVE];
	int64_t dmono, skew;
	size_t hl;

	if (!w->open) {
		return;
	}
	item_times(w, w->open_wall, w->open_mono, &dmono, &skew);
	hl = item_header(hdr, w->open_kind, w->open_len, dmono, skew);
	memcpy(w->plain + w->plain_len, hdr, hl);
	if (hl != ITEM_RESERVE) {
		memmove(w->plain + w->plain_len + hl, w->plain + w->open_data,
			w->open_len);
	}
	w->plain_len += hl + w->open_len;
	w->open = 0;
}

size_t shim_rec_writer_room(const struct shim_rec_writer *w)
{
	size_t used = w->plain_len + ITEM_RESERVE;

	if (w->open) {
		used += ITEM_RESERVE + w->open_len;
	}
	return used >= w->plain_cap ? 0 : w->plain_cap - used;
}

size_t shim_rec_writer_pending(const struct shim_rec_writer *w)
{
	return w->plain_len + (w->open ? ITEM_RESERVE + w->open_len : 0);
}

int shim_rec_writer_add(struct shim_rec_writer *w, enum shim_rec_kind kind,
			const uint8_t *data, size_t len, int64_t wall_ns,
			int64_t mono_ns)
{
	int64_t dmono, skew;

	if (kind != SHIM_REC_IN && kind != SHIM_REC_OUT &&
	    kind != SHIM_REC_META) {
		return SHIM_EINVAL;
	}
	if (len > 0 && data == NULL) {
		return SHIM_EINVAL;
	}
	if (kind != SHIM_REC_META && len == 0) {
		return 0;
	}
	/* Extend the open item: same direction, in quick succession, and
	 * the clock did not step. */
	if (w->open && kind == w->open_kind &&
	    sub_i64(mono_ns, w->open_last_mono) >= 0 &&
	    sub_i64(mono_ns, w->open_last_mono) < SHIM_REC_COALESCE_NS &&
	    sub_i64(sub_i64(wall_ns, w->last_wall),
		    sub_i64(mono_ns, w->last_mono)) == 0) {
		if (shim_rec_writer_room(w) + ITEM_RESERVE < len) {
			return SHIM_ENOSPC;
		}
		memcpy(w->plain + w->open_data + w->open_len, data, len);
		w->open_len += len;
		w->open_last_mono = mono_ns;
		goto count;
	}
	if (shim_rec_writer_room(w) < len) {
		return SHIM_ENOSPC;
	}
	close_open(w);
	if (kind == SHIM_REC_META) {
		item_times(w, wall_ns, mono_ns, &dmono, &skew);
		w->plain_len += item_header(w->plain + w->plain_len, kind, len,
					    dmono, skew);
		memcpy(w->plain + w->plain_len, data, len);
		w->plain_len += len;
	} else {
		w->open = 1;
		w->open_kind = kind;
		w->open_data = w->plain_len + ITEM_RESERVE;
		w->open_len = len;
		w->open_wall = wall_ns;
		w->open_mono = mono_ns;
		w->open_last_mono = mono_ns;
		memcpy(w->plain + w->open_data, data, len);
	}
count:
	if (kind == SHIM_REC_IN) {
		w->batch_in += len;
	} else if (kind == SHIM_REC_OUT) {
		w->batch_out += len;
	}
	w->last_wall = wall_ns;
	w->last_mono = mono_ns;
	return 0;
}

static void data_nonce(uint64_t seq, uint8_t nonce[SHIM_GCM_NONCE_LEN])
{
	shim_put_u32(nonce, SHIM_REC_DATA);
	shim_put_u64(nonce + 4, seq);
}

/* AAD of a DATA record: its clear prefix, sequence number, chain. */
static size_t data_aad(const uint8_t *prefix, size_t plen, uint64_t seq,
		       const uint8_t chain[32], uint8_t *aad)
{
	memcpy(aad, prefix, plen);
	shim_put_u64(aad + plen, seq);
	memcpy(aad + plen + 8, chain, 32);
	return plen + 40;
}

int shim_rec_writer_seal(struct shim_rec_writer *w, uint8_t *out, size_t cap,
			 size_t *len)
{
	uint8_t nonce[SHIM_GCM_NONCE_LEN];
	uint8_t aad[DATA_PREFIX_MAX + 40];
	uint8_t *b = out + 4;
	size_t n = 0, alen, flen;
	int64_t end_ms;
	int rc;

	*len = 0;
	close_open(w);
	if (w->plain_len == 0) {
		return 0;
	}
	if (cap < w->plain_len + DATA_PREFIX_MAX + SHIM_GCM_TAG_LEN +
			  SHIM_REC_FRAME_OVERHEAD) {
		return SHIM_ENOSPC;
	}
	end_ms = sub_i64(w->last_mono, w->start_mono) / 1000000;
	if (end_ms < 0) {
		end_ms = 0;
	}
	b[n++] = SHIM_REC_DATA;
	n += put_varint(b + n, w->batch_in);
	n += put_varint(b + n, w->batch_out);
	n += put_varint(b + n, (uint64_t)end_ms);
	alen = data_aad(b, n, w->records, w->chain, aad);
	data_nonce(w->records, nonce);
	rc = w->crypto->aead_seal(w->crypto->ctx, w->key, nonce, aad, alen,
				  w->plain, w->plain_len, b + n,
				  b + n + w->plain_len);
	if (rc != 0) {
		return rc;
	}
	n += w->plain_len + SHIM_GCM_TAG_LEN;
	flen = frame_close(out, n);
	rc = chain_step(w->crypto, w->chain, out, flen);
	if (rc != 0) {
		return rc;
	}
	shim_memzero(w->plain, w->plain_len);
	w->records++;
	w->bytes_in += w->batch_in;
	w->bytes_out += w->batch_out;
	w->batch_in = 0;
	w->batch_out = 0;
	w->plain_len = 0;
	*len = flen;
	return 0;
}

void shim_rec_writer_summary(const struct shim_rec_writer *w,
			     struct shim_rec_footer *f)
{
	f->bytes_in = w->bytes_in;
	f->bytes_out = w->bytes_out;
	f->records = w->records;
	memcpy(f->chain_head, w->chain, SHIM_REC_HASH_LEN);
}

void shim_rec_writer_wipe(struct shim_rec_writer *w)
{
	if (w->plain != NULL) {
		shim_memzero(w->plain, w->plain_cap);
	}
	shim_memzero(w, sizeof(*w));
}

/* ---- reader -------------------------------------------------------------- */

static const char *const damage_msg[] = {
#define SHIM__REC_DMG_MSG(name, msg) msg,
	SHIM_REC_DAMAGE_MAP(SHIM__REC_DMG_MSG)
#undef SHIM__REC_DMG_MSG
};

static const char *const damage_name[] = {
#define SHIM__REC_DMG_NAME(name, msg) #name,
	SHIM_REC_DAMAGE_MAP(SHIM__REC_DMG_NAME)
#undef SHIM__REC_DMG_NAME
};

const char *shim_rec_damage_str(int damage)
{
	if (damage < 0 || damage >= SHIM_REC_D__COUNT) {
		return "unknown damage";
	}
	return damage_msg[damage];
}

const char *shim_rec_damage_name(int damage)
{
	if (damage < 0 || damage >= SHIM_REC_D__COUNT) {
		return "UNKNOWN";
	}
	return damage_name[damage];
}

/* Where frames are assembled: the magic sits in front of the header. */
#define FRAME_AREA (SHIM_REC_MAX_BODY + 16)

void shim_rec_reader_init(struct shim_rec_reader *r,
			  const struct shim_crypto_ops *c,
			  const struct shim_rec_reader_cb *cb, uint8_t *buf,
			  size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->crypto = c;
	if (cb != NULL) {
		r->cb = *cb;
	}
	r->buf = buf;
	r->cap = cap;
	r->state = RS_MAGIC;
	r->need = SHIM_REC_MAGIC_LEN;
	r->res.status = SHIM_REC_UNSEALED;
}

void shim_rec_reader_set_key(struct shim_rec_reader *r,
			     const uint8_t key[SHIM_REC_KEY_LEN])
{
	memcpy(r->key, key, SHIM_REC_KEY_LEN);
	r->have_key = 1;
}

static int fail(struct shim_rec_reader *r, enum shim_rec_damage d,
		uint64_t off)
{
	r->state = RS_FAILED;
	r->res.status = SHIM_REC_CORRUPT;
	r->res.damage = d;
	r->res.offset = off;
	r->res.record = r->res.records;
	return SHIM_ECORRUPT;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

/* Reads a decimal number of 1..20 digits at p[*pos] without overflow. */
static int dec_u64(const uint8_t *p, size_t n, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	size_t start = *pos;

	while (*pos < n && p[*pos] >= '0' && p[*pos] <= '9') {
		uint64_t d = (uint64_t)(p[*pos] - '0');

		if (v > (UINT64_MAX - d) / 10) {
			return SHIM_ECORRUPT;
		}
		v = v * 10 + d;
		(*pos)++;
	}
	if (*pos == start) {
		return SHIM_ECORRUPT;
	}
	*out = v;
	return 0;
}

/* Matches the literal lit at p[*pos]. */
static int lit(const uint8_t *p, size_t n, size_t *pos, const char *s)
{
	size_t l = strlen(s);

	if (n - *pos < l || memcmp(p + *pos, s, l) != 0) {
		return SHIM_ECORRUPT;
	}
	*pos += l;
	return 0;
}

/* Accounts a meta item named SHIM_REC_GAP_EVENT. Its detail is
 * "N bytes not recorded", or "N bytes not recorded (in I, out O)" with
 * I + O = N. A marker that does not read that way still marks the
 * recording degraded and is counted in gap_bad. */
static void note_gap(struct shim_rec_result *o, const uint8_t *d, size_t n)
{
	size_t pos = 0;
	uint64_t total, in, out;

	o->gaps = add_sat(o->gaps, 1);
	o->degraded = 1;
	if (dec_u64(d, n, &pos, &total) != 0 ||
	    lit(d, n, &pos, " bytes not recorded") != 0) {
		o->gap_bad = add_sat(o->gap_bad, 1);
		return;
	}
	if (pos == n) {
		o->gap_bytes = add_sat(o->gap_bytes, total);
		return;
	}
	if (lit(d, n, &pos, " (in ") != 0 || dec_u64(d, n, &pos, &in) != 0 ||
	    lit(d, n, &pos, ", out ") != 0 || dec_u64(d, n, &pos, &out) != 0 ||
	    lit(d, n, &pos, ")") != 0 || pos != n || in + out < in ||
	    in + out != total) {
		o->gap_bad = add_sat(o->gap_bad, 1);
		return;
	}
	o->gap_bytes = add_sat(o->gap_bytes, total);
	o->gap_in = add_sat(o->gap_in, in);
	o->gap_out = add_sat(o->gap_out, out);
}

static void note_meta(struct shim_rec_result *o, const uint8_t *p, size_t n)
{
	static const char name[] = SHIM_REC_GAP_EVENT;
	size_t nl = sizeof(name) - 1;

	if (n > nl && memcmp(p, name, nl) == 0 && p[nl] == 0) {
		note_gap(o, p + nl + 1, n - nl - 1);
	}
}

static int decode_items(struct shim_rec_reader *r, const uint8_t *p, size_t n)
{
	size_t pos = 0;

	while (pos < n) {
		struct shim_rec_item it;
		uint64_t tag, zm, zs;
		int64_t dmono;

		if (get_varint(p, n, &pos, &tag) != 0 ||
		    get_varint(p, n, &pos, &zm) != 0 ||
		    get_varint(p, n, &pos, &zs) != 0) {
			return SHIM_ECORRUPT;
		}
		if ((tag & 3) > SHIM_REC_META || (tag >> 2) > n - pos) {
			return SHIM_ECORRUPT;
		}
		dmono = unzigzag(zm);
		it.kind = (enum shim_rec_kind)(tag & 3);
		it.len = (size_t)(tag >> 2);
		it.data = p + pos;
		it.mono_ns = add_i64(r->prev_mono, dmono);
		it.wall_ns = add_i64(add_i64(r->prev_wall, dmono),
				     unzigzag(zs));
		it.record = r->res.records;
		r->prev_mono = it.mono_ns;
		r->prev_wall = it.wall_ns;
		pos += it.len;
		if (it.kind == SHIM_REC_META) {
			note_meta(&r->res, it.data, it.len);
		}
		if (r->cb.item != NULL) {
			int rc = r->cb.item(r->cb.arg, &it);

			if (rc != 0) {
				r->cb_err = rc;
				return rc;
			}
		}
	}
	return 0;
}

static int on_data(struct shim_rec_reader *r, const uint8_t *frame,
		   size_t flen)
{
	const uint8_t *b = frame + 4;
	size_t n = flen - SHIM_REC_FRAME_OVERHEAD, pos = 1;
	uint64_t nin, nout, end_ms;

	if (get_varint(b, n, &pos, &nin) != 0 ||
	    get_varint(b, n, &pos, &nout) != 0 ||
	    get_varint(b, n, &pos, &end_ms) != 0 ||
	    n - pos < SHIM_GCM_TAG_LEN + 1 ||
	    n - pos - SHIM_GCM_TAG_LEN > SHIM_REC_MAX_PLAIN) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	if (nin + nout < nin || nin + nout > n - pos - SHIM_GCM_TAG_LEN) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	if (r->have_key) {
		uint8_t nonce[SHIM_GCM_NONCE_LEN];
		uint8_t aad[DATA_PREFIX_MAX + 40];
		uint8_t *plain = r->buf + FRAME_AREA;
		size_t clen = n - pos - SHIM_GCM_TAG_LEN, alen;
		int rc;

		if (pos > DATA_PREFIX_MAX) {
			return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
		}
		alen = data_aad(b, pos, r->res.records, r->res.chain, aad);
		data_nonce(r->res.records, nonce);
		rc = r->crypto->aead_open(r->crypto->ctx, r->key, nonce, aad,
					  alen, b + pos, clen, b + pos + clen,
					  plain);
		if (rc != 0) {
			return fail(r, SHIM_REC_D_RECORD_AUTH, r->frame_off);
		}
		rc = decode_items(r, plain, clen);
		shim_memzero(plain, clen);
		if (rc != 0) {
			if (r->cb_err != 0) {
				r->state = RS_FAILED;
				return rc;
			}
			return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
		}
	}
	if (r->res.bytes_in + nin < r->res.bytes_in ||
	    r->res.bytes_out + nout < r->res.bytes_out) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	r->res.bytes_in += nin;
	r->res.bytes_out += nout;
	r->res.last_end_ms = (int64_t)(end_ms & 0x7fffffffffffffffULL);
	r->res.records++;
	return 0;
}

static int on_footer(struct shim_rec_reader *r, const uint8_t *frame,
		     size_t flen)
{
	const uint8_t *b = frame + 4;
	size_t n = flen - SHIM_REC_FRAME_OVERHEAD;
	struct shim_rec_footer *f = &r->ftr;
	uint8_t digest[32];

	if (footer_decode(b, n, f) != 0) {
		return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
	}
	if (r->crypto->hash == NULL || r->crypto->verify == NULL ||
	    footer_digest(r->crypto, b, n - SHIM_P256_SIG_LEN, digest) != 0 ||
	    r->crypto->verify(r->crypto->ctx, r->hdr.identity_pub, digest,
			      f->sig) != 0) {
		return fail(r, SHIM_REC_D_SIG, r->frame_off);
	}
	if (f->records != r->res.records) {
		return fail(r, SHIM_REC_D_COUNT, r->frame_off);
	}
	if (!shim_ct_equal(f->chain_head, r->res.chain, SHIM_REC_HASH_LEN)) {
		return fail(r, SHIM_REC_D_CHAIN, r->frame_off);
	}
	if (f->bytes_in != r->res.bytes_in || f->bytes_out != r->res.bytes_out) {
		return fail(r, SHIM_REC_D_BYTES, r->frame_off);
	}
	r->res.have_footer = 1;
	if (r->cb.footer != NULL) {
		int rc = r->cb.footer(r->cb.arg, f);

		if (rc != 0) {
			r->cb_err = rc;
			r->state = RS_FAILED;
			return rc;
		}
	}
	r->state = RS_AFTER_FOOTER;
	return 0;
}

/* A whole frame (length, body, CRC) sits at frame, flen bytes. */
static int on_frame(struct shim_rec_reader *r, const uint8_t *frame,
		    size_t flen)
{
	size_t blen = flen - SHIM_REC_FRAME_OVERHEAD;
	uint8_t type;
	int rc;

	if (crc32_fast(frame, 4 + blen) != shim_get_u32(frame + 4 + blen)) {
		if (r->state == RS_HEADER) {
			return fail(r, SHIM_REC_D_BAD_HEADER, r->frame_off);
		}
		/* Torn or altered: decided by what follows. */
		r->state = RS_BAD;
		r->res.damage = SHIM_REC_D_BAD_CRC;
		r->res.offset = r->frame_off;
		r->res.record = r->res.records;
		r->bad_end = r->frame_off + flen;
		return 0;
	}
	type = frame[4];
	if (r->state == RS_HEADER) {
		rc = header_decode(frame + 4, blen, &r->hdr);
		if (rc == SHIM_ENOTSUP) {
			return fail(r, SHIM_REC_D_BAD_VERSION, r->frame_off);
		}
		if (rc != 0) {
			return fail(r, SHIM_REC_D_BAD_HEADER, r->frame_off);
		}
		/* magic + header frame are contiguous in buf */
		rc = chain_start(r->crypto, r->res.chain, r->buf,
				 SHIM_REC_MAGIC_LEN + flen);
		if (rc != 0) {
			return fail(r, SHIM_REC_D_BAD_HEADER, r->frame_off);
		}
		r->prev_wall = r->hdr.start_wall_ns;
		r->prev_mono = r->hdr.start_mono_ns;
		r->res.have_header = 1;
		r->state = RS_FRAMES;
		if (r->cb.header != NULL) {
			rc = r->cb.header(r->cb.arg, &r->hdr);
			if (rc != 0) {
				r->cb_err = rc;
				r->state = RS_FAILED;
				return rc;
			}
		}
		r->res.decrypted = r->have_key;
		return 0;
	}
	if (type == SHIM_REC_DATA) {
		rc = on_data(r, frame, flen);
		if (rc != 0) {
			return rc;
		}
		rc = chain_step(r->crypto, r->res.chain, frame, flen);
		if (rc != 0) {
			return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
		}
		return 0;
	}
	if (type == SHIM_REC_FOOTER) {
		return on_footer(r, frame, flen);
	}
	return fail(r, SHIM_REC_D_BAD_RECORD, r->frame_off);
}

static uint8_t *frame_buf(struct shim_rec_reader *r)
{
	/* The header frame follows the magic so both can be hashed. */
	return r->state == RS_HEADER ? r->buf + SHIM_REC_MAGIC_LEN : r->buf;
}

int shim_rec_reader_feed(struct shim_rec_reader *r, const uint8_t *data,
			 size_t len)
{
	size_t i = 0;

	if (r->buf == NULL || r->cap < SHIM_REC_READER_BUF ||
	    r->crypto == NULL || r->crypto->hmac == NULL) {
		return SHIM_EINVAL;
	}
	while (i < len) {
		uint8_t *fb;
		size_t take;
		int rc;

		switch (r->state) {
		case RS_FAILED:
			r->pos += len - i;
			return r->cb_err != 0 ? r->cb_err : SHIM_ECORRUPT;
		case RS_BAD:
		case RS_AFTER_FOOTER:
			/* Only the shape of what follows matters now. */
			for (; i < len; i++, r->pos++) {
				if (data[i] != 0 && r->pos >= r->bad_end) {
					r->nonzero_after = 1;
				}
			}
			if (r->state == RS_AFTER_FOOTER && r->pos > r->bad_end) {
				r->state = RS_FAILED;
				r->res.status = SHIM_REC_CORRUPT;
				r->res.damage = SHIM_REC_D_TRAILING;
				r->res.offset = r->bad_end;
				r->res.record = r->res.records;
				return SHIM_ECORRUPT;
			}
			return 0;
		case RS_MAGIC:
			take = r->need - r->have;
			if (take > len - i) {
				take = len - i;
			}
			memcpy(r->buf + r->have, data + i, take);
			r->have += take;
			r->pos += take;
			i += take;
			if (r->have < r->need) {
				return 0;
			}
			if (memcmp(r->buf, SHIM_REC_MAGIC,
				   SHIM_REC_MAGIC_LEN) != 0) {
				return fail(r, SHIM_REC_D_BAD_MAGIC, 0);
			}
			r->state = RS_HEADER;
			r->have = 0;
			r->need = 4;
			r->frame_off = r->pos;
			break;
		default: /* RS_HEADER, RS_FRAMES */
			fb = frame_buf(r);
			take = r->need - r->have;
			if (take > len - i) {
				take = len - i;
			}
			memcpy(fb + r->have, data + i, take);
			r->have += take;
			r->pos += take;
			i += take;
			if (r->have < r->need) {
				return 0;
			}
			if (r->need == 4) {
				uint32_t bl = shim_get_u32(fb);

				if (bl == 0 || bl > SHIM_REC_MAX_BODY ||
				    (r->state == RS_HEADER &&
				     bl > SHIM_REC_HEADER_MAX)) {
					if (r->state == RS_HEADER) {
						return fail(r,
							    SHIM_REC_D_BAD_HEADER,
							    r->frame_off);
					}
					r->state = RS_BAD;
					r->res.damage = SHIM_REC_D_BAD_FRAME;
					r->res.offset = r->frame_off;
					r->res.record = r->res.records;
					r->bad_len_zero = bl == 0;
					r->bad_end = r->frame_off;
					r->nonzero_after = bl != 0;
					break;
				}
				r->need = 4 + (size_t)bl + 4;
				break;
			}
			rc = on_frame(r, fb, r->have);
			if (r->state == RS_FRAMES ||
			    r->state == RS_AFTER_FOOTER) {
				r->res.good_end = r->pos;
				r->frame_off = r->pos;
				r->bad_end = r->pos;
				r->have = 0;
				r->need = 4;
			}
			if (rc != 0) {
				return rc;
			}
			break;
		}
	}
	return 0;
}

int shim_rec_reader_finish(struct shim_rec_reader *r,
			   const uint8_t *expect_identity,
			   struct shim_rec_result *res)
{
	struct shim_rec_result *o = &r->res;
	int rc;

	o->total = r->pos;
	switch (r->state) {
	case RS_MAGIC:
		o->status = r->pos == 0 ? SHIM_REC_CORRUPT : SHIM_REC_TORN;
		o->damage = r->pos == 0 ? SHIM_REC_D_EMPTY : SHIM_REC_D_TORN;
		o->offset = 0;
		break;
	case RS_HEADER:
		o->status = SHIM_REC_TORN;
		o->damage = SHIM_REC_D_TORN;
		o->offset = r->frame_off;
		break;
	case RS_FRAMES:
		if (r->have == 0) {
			o->status = SHIM_REC_UNSEALED;
			o->damage = SHIM_REC_D_NO_FOOTER;
			o->offset = r->pos;
		} else {
			o->status = SHIM_REC_TORN;
			o->damage = SHIM_REC_D_TORN;
			o->offset = r->frame_off;
		}
		o->record = o->records;
		break;
	case RS_BAD:
		/* A bad frame at the very end, followed by nothing but
		 * zeros, is a tail torn by a power cut; anything else is
		 * damage. */
		if (!r->nonzero_after &&
		    (o->damage == SHIM_REC_D_BAD_CRC || r->bad_len_zero)) {
			o->status = SHIM_REC_TORN;
			o->damage = SHIM_REC_D_TORN;
		} else {
			o->status = SHIM_REC_CORRUPT;
		}
		break;
	case RS_AFTER_FOOTER:
		o->status = SHIM_REC_COMPLETE;
		o->damage = SHIM_REC_D_OK;
		o->offset = 0;
		if (expect_identity != NULL &&
		    !shim_ct_equal(expect_identity, r->hdr.identity_pub,
				   SHIM_P256_PUB_LEN)) {
			o->status = SHIM_REC_CORRUPT;
			o->damage = SHIM_REC_D_IDENTITY;
			o->offset = o->good_end;
			o->record = o->records;
		}
		break;
	default:
		break;
	}
	o->pinned = expect_identity != NULL;
	if (o->have_footer) {
		o->dropped = r->ftr.dropped;
		if ((r->ftr.flags & SHIM_REC_F_DEGRADED) != 0 ||
		    r->ftr.dropped != 0) {
			o->degraded = 1;
		}
	}
	if (r->cb_err != 0 || o->status != SHIM_REC_COMPLETE) {
		o->verdict = SHIM_REC_V_FAILED;
	} else if (!o->pinned) {
		o->verdict = SHIM_REC_V_UNPINNED;
	} else if (o->degraded) {
		o->verdict = SHIM_REC_V_DEGRADED;
	} else {
		o->verdict = SHIM_REC_V_INTACT;
	}
	if (r->cb_err != 0) {
		rc = r->cb_err;
	} else if (o->status == SHIM_REC_COMPLETE) {
		rc = 0;
	} else if (o->status != SHIM_REC_CORRUPT) {
		rc = SHIM_ETRUNC;
	} else {
		switch (o->damage) {
		case SHIM_REC_D_SIG:
		case SHIM_REC_D_IDENTITY:
			rc = SHIM_ESIG;
			break;
		case SHIM_REC_D_CHAIN:
		case SHIM_REC_D_COUNT:
		case SHIM_REC_D_RECORD_AUTH:
			rc = SHIM_ECHAIN;
			break;
		default:
			rc = SHIM_ECORRUPT;
			break;
		}
	}
	if (res != NULL) {
		*res = *o;
	}
	return rc;
}

void shim_rec_reader_wipe(struct shim_rec_reader *r)
{
	shim_memzero(r->key, sizeof(r->key));
	if (r->buf != NULL && r->cap >= SHIM_REC_READER_BUF) {
		shim_memzero(r->buf + FRAME_AREA, SHIM_REC_MAX_BODY);
	}
	r->have_key = 0;
}

int shim_rec_header_start(const struct shim_port *port, const char *shim_id,
			  const char *technician, int custody,
			  const uint8_t identity[SHIM_P256_PUB_LEN],
			  struct shim_rec_header *h)
{
	char t[32];
	uint8_t rnd[3];
	size_t n = 0, sid = strlen(shim_id), tid = strlen(technician);
	int i, rc;

	memset(h, 0, sizeof(*h));
	if (sid > SHIM_REC_ID_MAX || tid > SHIM_REC_TECH_MAX) {
		return SHIM_EINVAL;
	}
	h->version = SHIM_REC_VERSION;
	h->start_wall_ns = port->clock.wall_ns(port->clock.ctx);
	h->start_mono_ns = port->clock.mono_ns(port->clock.ctx);
	/* "YYYY-MM-DDTHH:MM:SS..." without its separators */
	if (shim_syslog_time(h->start_wall_ns, t, sizeof(t)) < 0) {
		return SHIM_ECLOCK;
	}
	rc = port->rng.fill(port->rng.ctx, rnd, sizeof(rnd));
	if (rc != 0) {
		return rc;
	}
	for (i = 0; i < 19; i++) {
		if (t[i] != '-' && t[i] != ':') {
			h->session_id[n++] = t[i];
		}
	}
	h->session_id[n++] = 'Z';
	h->session_id[n++] = '-';
	shim_hex_encode(rnd, sizeof(rnd), h->session_id + n);
	memcpy(h->shim_id, shim_id, sid + 1);
	memcpy(h->technician_id, technician, tid + 1);
	h->custody = (uint8_t)custody;
	memcpy(h->identity_pub, identity, SHIM_P256_PUB_LEN);
	return 0;
}
